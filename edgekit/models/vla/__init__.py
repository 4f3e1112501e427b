"""``vla``: ACT / SmolVLA-style chunked VLA; one forward per tick yields an action chunk, 50 Hz.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
