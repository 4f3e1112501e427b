"""Calibration data for ``edgekit quantize``: load, validate, split, synthesize and save.

A calibration set is one ``.npz`` (or a folder of them, concatenated along axis 0 in sorted
filename order): array names = the loop program's observation names, axis 0 = samples (ticks in
time order), then the per-sample shape and exact dtype of its ``observation_spec()``. Format:
``calib_data/README.md``. Numpy only: importing this module does not import torch.
"""

from edgekit.calib.sets import (
    CalibrationSet,
    from_recordings,
    load_calibration,
    save_calibration,
    validate,
)
from edgekit.calib.synthetic import synthesize, synthesize_for_program

__all__ = [
    "CalibrationSet",
    "from_recordings",
    "load_calibration",
    "save_calibration",
    "synthesize",
    "synthesize_for_program",
    "validate",
]
