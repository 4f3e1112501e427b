"""``vla-flow``: a pi0 / SmolVLA-style flow-matching VLA: a VLM prefix run once per planning
tick into a KV cache, an action expert called K times on it (Euler steps from noise), 50 Hz.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick, the KV
check), ``entry`` (presets, spec and zoo registration)."""
