"""``diffusion-policy``: Chi et al.'s visuomotor Diffusion Policy, action chunks at 10 Hz.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
