"""Synthetic calibration episodes: structured, procedurally generated observations (asked for
explicitly with ``--calib synthetic``; never a silent fallback)."""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from edgekit.calib.sets import CalibrationSet, Spec, from_recordings
from edgekit.loop import LoopProgram
from edgekit.spec import TensorSpec

DT = 0.05  # seconds between two synthetic ticks


_INSTRUCTIONS = (
    "pick up the red block|push the blue cube to the left|put the green disc in the bowl|"
    "stack the red block on the blue cube|open the top drawer|wipe the table with the sponge|"
    "hand me the yellow cup|move the arm back home"
)


TEMPLATES = tuple(_INSTRUCTIONS.split("|"))  # instruction templates for token-id tensors


_RGB = [[200, 40, 40], [40, 80, 200], [40, 160, 60], [230, 190, 40], [150, 60, 170]]


PALETTE = np.array(_RGB, np.float32)  # block colours


def _views(lead: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per flattened leading index: tick offset (index i of L is L-1-i ticks earlier), shift."""
    lead = lead or (1,)
    idx = np.indices(lead).reshape(len(lead), -1).T
    return (idx - (np.array(lead) - 1)).sum(1), idx.sum(1)


def _box(x: np.ndarray, y: np.ndarray, c: Any, half: Any, px: int) -> np.ndarray:
    """Anti-aliased coverage of an axis-aligned box (x, y in [0, 1], px pixels per unit)."""
    sd = np.maximum(np.abs(x - c[0]) - half[0], np.abs(y - c[1]) - half[1])
    return np.clip(0.5 - sd * px, 0.0, 1.0)


class _Scene:
    """A table-top scene: wall and table gradients, moving blocks/discs, a dark gripper."""

    def __init__(self, seed: int) -> None:
        r = np.random.default_rng([seed, 7])
        self.seed, self.k = seed, 3
        self.wall = r.uniform(150, 220, 3).astype(np.float32)
        self.table = r.uniform(90, 170, 3).astype(np.float32)
        self.horizon = r.uniform(0.25, 0.4)
        self.colors = PALETTE[r.permutation(len(PALETTE))[: self.k]]
        self.size = r.uniform(0.06, 0.1, self.k)
        self.disc = r.permutation(np.arange(self.k) % 2 == 0)
        bx = (np.arange(self.k) + 0.5) / self.k * 0.7 + 0.15 + r.uniform(-0.05, 0.05, self.k)
        self.base = np.stack([r.permutation(bx), r.uniform(0.6, 0.75, self.k)], 1)
        self.amp = r.uniform(0.08, 0.15, (self.k, 2)) * [1.0, 0.5]
        self.freq, self.phase = r.uniform(0.2, 0.5, (self.k, 2)), r.uniform(0, 2 * np.pi, 4)
        self.textures: dict[tuple[int, int], np.ndarray] = {}

    def frame(self, h: int, w: int, tick: float, shift: int) -> np.ndarray:
        t, pad = tick * DT, 24
        s = min(shift * max(1, round(h / 48)), pad)
        y = (np.arange(h, dtype=np.float32)[:, None] + s // 2 + 0.5) / h
        x = (np.arange(w, dtype=np.float32)[None, :] + s + 0.5) / w
        wall = self.wall * (1.0 - 0.3 * y / self.horizon)[..., None]
        table = self.table * (0.75 + 0.35 * y - 0.2 * np.abs(x - 0.5))[..., None]
        img = np.where((y < self.horizon)[..., None], wall, table)
        pos = self.base + self.amp * np.sin(2 * np.pi * self.freq * t + self.phase[: self.k, None])
        for k in np.argsort(pos[:, 1]):  # far objects first
            (cx, cy), r = pos[k], self.size[k]
            shadow = _box(x, y, (cx + 0.02, cy + r * 0.7), (r, r * 0.35), h)
            img *= (1.0 - 0.35 * shadow)[..., None]
            if self.disc[k]:
                a = np.clip(0.5 + (r - np.hypot(x - cx, (y - cy) * 1.3)) * h, 0.0, 1.0)
            else:
                a = _box(x, y, (cx, cy), (r, r * 0.8), h)
            shade = np.clip(1.1 - 0.4 * (y - cy + r) / (2 * r), 0.6, 1.2)[..., None]
            img = img * (1.0 - a[..., None]) + (self.colors[k] * shade) * a[..., None]
        gx = self.base[0, 0] + self.amp[0, 0] * np.sin(2 * np.pi * self.freq[0, 0] * (t - 0.6))
        gy = 0.4 + 0.15 * np.sin(2 * np.pi * 0.3 * t + self.phase[3])
        op = 0.04 + 0.015 * (1 + np.sin(2 * np.pi * 0.3 * t))
        parts = [((gx, gy / 2), (0.025, gy / 2)), ((gx, gy), (op + 0.03, 0.018))]
        parts += [((gx + sgn * (op + 0.015), gy + 0.06), (0.012, 0.06)) for sgn in (-1, 1)]
        a = np.max([_box(x, y, c, half, h) for c, half in parts], axis=0)[..., None]
        img = img * (1.0 - a) + np.float32(45.0) * (1.3 - 0.6 * y[..., None]) * a
        if (h, w) not in self.textures:  # fixed grain (sensor pattern): mild, compresses well
            rt = np.random.default_rng([self.seed, h, w])
            self.textures[(h, w)] = np.clip(rt.normal(0, 2.5, (h + pad, w + pad)), -6, 6)
        img += self.textures[(h, w)][s // 2 : s // 2 + h, s : s + w, None]
        return np.clip(img, 0, 255).astype(np.float32)


def _image_layout(t: TensorSpec, shape: tuple[int, ...]) -> tuple[int, int, int, bool] | None:
    """(H, W, C, channels_first) if the tensor looks like an image, else None."""
    if len(shape) < 3:
        return None
    if t.sampler == "image" and shape[-1] in (1, 3, 4) and min(shape[-3:-1]) >= 8:
        return shape[-3], shape[-2], shape[-1], False
    floaty = np.dtype(t.dtype).kind == "f" and t.sampler in ("uniform", "normal")
    if (t.sampler == "image" or floaty) and shape[-3] in (1, 3) and min(shape[-2:]) >= 16:
        return shape[-2], shape[-1], shape[-3], True
    return None


def _images(t: TensorSpec, shape: tuple[int, ...], n: int, scene: _Scene) -> np.ndarray:
    h, w, c, chw = _image_layout(t, shape) or (0, 0, 0, False)
    lead = shape[:-3]
    ticks, shifts = _views(lead)
    out = np.empty((n, len(ticks), *shape[-3:]), t.dtype)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for i in range(n):
        for j, (dt, sh) in enumerate(zip(ticks.tolist(), shifts.tolist(), strict=True)):
            if (i + dt, sh) not in cache:
                rgb = scene.frame(h, w, i + dt, sh)
                v = rgb.mean(-1, keepdims=True) if c == 1 else rgb[..., np.arange(c) % 3]
                if t.sampler == "uniform":
                    v = t.low + (t.high - t.low) * v / 255.0
                elif t.sampler == "normal":
                    v = v / 127.5 - 1.0
                elif np.dtype(t.dtype).kind in "iu":
                    v = np.round(v)
                cache[(i + dt, sh)] = (v.transpose(2, 0, 1) if chw else v).astype(t.dtype)
            out[i, j] = cache[(i + dt, sh)]
    return out.reshape((n, *shape))


def _trajectory(
    t: TensorSpec, shape: tuple[int, ...], n: int, rng: np.random.Generator
) -> np.ndarray:
    """Joint-like sums of sinusoids: the first half positions, the second half their d/dt."""
    lead, d = (shape[:-1], shape[-1]) if shape else ((), 1)
    m = (d + 1) // 2 if d > 1 else 1
    c, amp = rng.uniform(-0.5, 0.5, (m, 1)), rng.uniform(0.1, 0.2, (m, 3))
    w, ph = 2 * np.pi * rng.uniform(0.1, 0.4, (m, 3)), rng.uniform(0, 2 * np.pi, (m, 3))
    ticks = (np.arange(n)[:, None] + _views(lead)[0][None, :]) * DT  # (n, L)
    arg = w * ticks[..., None, None] + ph  # (n, L, m, 3)
    q = c[:, 0] + (amp * np.sin(arg)).sum(-1)  # |q| <= 1.1
    v = (amp * w * np.cos(arg)).sum(-1)  # |dq/dt| <= 1.51
    x = np.concatenate([q, v[..., : d - m]], -1)
    if t.sampler in ("uniform", "image"):
        lo, hi = (0.0, 255.0) if t.sampler == "image" else (t.low, t.high)
        x = lo + (hi - lo) * np.clip((x + 1.5) / 3.0, 0.0, 1.0 - 1e-6)
    if np.dtype(t.dtype).kind in "iu":
        x = np.floor(x)
    return x.reshape((n, *shape)).astype(t.dtype)


def _tokens(t: TensorSpec, shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    """Instruction-like token ids in [low, high) from fixed templates (low is the padding id)."""
    length = shape[-1] if shape else 1
    lo, hi = int(t.low), int(t.high)
    span = max(hi - lo - 1, 1)  # ids lo+1 .. hi-1 for words, lo for padding
    lanes = math.prod(shape[:-1]) if shape else 1
    out = np.full((n, lanes, length), lo, np.int64)
    for i in range(n):
        for j in range(lanes):
            words = TEMPLATES[(seed + i // 8 + j) % len(TEMPLATES)].split()[:length]
            ids = [min(lo + 1 + zlib.crc32(wd.encode()) % span, hi - 1) for wd in words]
            out[i, j, : len(ids)] = ids
    return out.reshape((n, *shape)).astype(t.dtype)


def synthesize(observation_spec: Spec, n: int, seed: int = 0) -> CalibrationSet:
    """Deterministic, structured robot-episode-like observations (not white noise)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scene, arrays = _Scene(seed), {}
    for t in observation_spec:
        rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
        dims = {d: 1 for d in t.shape if isinstance(d, str)}
        shape = t.concrete_shape(dims)
        kind = np.dtype(t.dtype).kind
        if kind == "b" or t.sampler == "mask":
            arrays[t.name] = np.stack([t.sample(rng, dims) for _ in range(n)])
        elif _image_layout(t, shape) is not None:
            arrays[t.name] = _images(t, shape, n, scene)
        elif kind in "iu" and t.sampler == "int":
            arrays[t.name] = _tokens(t, shape, n, seed)
        else:
            arrays[t.name] = _trajectory(t, shape, n, rng)
    return CalibrationSet(arrays, "synthetic")


def synthesize_for_program(program: LoopProgram, n: int, seed: int = 0) -> CalibrationSet:
    """Like :func:`synthesize`, but a program with its own ``sample_observation`` draws them."""
    spec = program.observation_spec()
    if type(program).sample_observation is LoopProgram.sample_observation:
        return synthesize(spec, n, seed)
    rng = np.random.default_rng(seed)
    cal = from_recordings([program.sample_observation(rng) for _ in range(n)], spec)
    cal.source = "synthetic"
    return cal
