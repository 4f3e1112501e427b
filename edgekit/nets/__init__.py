"""Modelling code for the zoo: plain torch modules, no edgekit contract."""
