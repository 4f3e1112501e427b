"""``world-model``: DreamerV3 RSSM; acting at 50 Hz or CEM planning in imagination at 10 Hz.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
