"""Latency estimates for targets that are not this machine (a labelled roofline)."""

from edgekit.estimate.host import host_machine, target_machine
from edgekit.estimate.machine import Machine
from edgekit.estimate.roofline import ESTIMATED, MEASURED, TickEstimate, estimate_tick

__all__ = [
    "ESTIMATED",
    "MEASURED",
    "Machine",
    "TickEstimate",
    "estimate_tick",
    "host_machine",
    "target_machine",
]
