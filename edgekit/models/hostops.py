"""Host-side steps shared by loop programs (numpy, float32)."""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalizer:
    """uint8 (..., H, W, 3) camera frames -> float32 (..., 3, H, W), (x/255 - mean) / std.

    Converting while transposing in one copy, then normalizing in place, is ~7x faster than
    normalizing first and transposing floats.
    """

    def __init__(
        self, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
    ) -> None:
        # (3, 1, 1): applied after the transpose to channels-first; the /255 is folded in
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1) * np.float32(255.0)
        self.scale = np.float32(1.0) / (np.asarray(std, np.float32).reshape(3, 1, 1) * 255.0)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        nd = frames.ndim
        axes = (*range(nd - 3), nd - 1, nd - 3, nd - 2)
        out = np.ascontiguousarray(frames.transpose(axes), np.float32)
        out -= self.mean
        out *= self.scale
        return out
