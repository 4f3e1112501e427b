"""``humanoid``: whole-body controller with a carried observation history, 50 Hz.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
