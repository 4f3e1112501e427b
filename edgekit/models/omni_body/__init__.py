"""``omni-body``: one MetaMorph policy for an arm, a quadruped and a humanoid, 50 Hz.

The network never changes; the program picks a body. Each body is a fixed table of joints
(axis, range, link, mass, torque limit, placement) turned into per-limb morphology descriptors,
padded to ``max_limbs`` with a key padding mask.

``config`` (preset sizes), ``modeling`` (torch modules), ``program`` (the numpy tick),
``entry`` (presets, spec and zoo registration)."""
