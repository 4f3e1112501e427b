"""Calibration data for ``edgekit quantize``: load, validate, split, synthesize and save.

A calibration set is one ``.npz`` (or a folder of them, concatenated along axis 0 in sorted
filename order): array names = the loop program's observation names, axis 0 = samples (ticks in
time order), then the per-sample shape and exact dtype of its ``observation_spec()``. Format:
``calib_data/README.md``. Numpy only: importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from edgekit.errors import InputSpecError
from edgekit.loop import LoopProgram
from edgekit.spec import TensorSpec

Arrays = dict[str, np.ndarray]
Spec = Sequence[TensorSpec]
DT = 0.05  # seconds between two synthetic ticks
_INSTRUCTIONS = (
    "pick up the red block|push the blue cube to the left|put the green disc in the bowl|"
    "stack the red block on the blue cube|open the top drawer|wipe the table with the sponge|"
    "hand me the yellow cup|move the arm back home"
)
TEMPLATES = tuple(_INSTRUCTIONS.split("|"))  # instruction templates for token-id tensors
_RGB = [[200, 40, 40], [40, 80, 200], [40, 160, 60], [230, 190, 40], [150, 60, 170]]
PALETTE = np.array(_RGB, np.float32)  # block colours


@dataclass(eq=False)
class CalibrationSet:
    """Observation arrays (name -> (samples, *per-sample shape)), in time order."""

    arrays: dict[str, np.ndarray]
    source: str  # a path, "recordings" or "synthetic"

    @property
    def n(self) -> int:
        """Number of samples (ticks)."""
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def observations(self) -> list[Arrays]:
        """One observation dict per sample, in order (views into the arrays)."""
        return [{k: v[i] for k, v in self.arrays.items()} for i in range(self.n)]

    def split(
        self, holdout_fraction: float = 0.25, min_holdout: int = 2, min_calibration: int = 2
    ) -> tuple[CalibrationSet, CalibrationSet]:
        """(calibration, held-out): the LAST samples are held out, so time order is kept."""
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        hold = max(min_holdout, math.floor(self.n * holdout_fraction + 0.5))
        cut = self.n - hold
        if cut < min_calibration:
            raise InputSpecError(
                f"{self.source}: {self.n} samples cannot be split into >= {min_calibration} "
                f"calibration and {hold} held-out samples; give at least {min_calibration + hold}"
            )
        head = CalibrationSet({k: v[:cut] for k, v in self.arrays.items()}, self.source)
        tail = CalibrationSet({k: v[cut:] for k, v in self.arrays.items()}, self.source)
        return head, tail

    def to_dict_summary(self) -> dict[str, Any]:
        """For manifests: source, n, names, per-sample shapes, dtypes, sha256 of the data."""
        h = hashlib.sha256()
        for name in sorted(self.arrays):
            a = np.asarray(self.arrays[name], order="C")
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        return {
            "source": self.source,
            "n": self.n,
            "names": list(self.arrays),
            "shapes": {k: list(v.shape[1:]) for k, v in self.arrays.items()},
            "dtypes": {k: v.dtype.name for k, v in self.arrays.items()},
            "sha256": h.hexdigest(),
        }


# --- reading and validation -----------------------------------------------------------------


def _fits(got: tuple[int, ...], want: tuple[int | str, ...]) -> bool:
    pairs = zip(got, want, strict=False)
    return len(got) == len(want) and all(isinstance(w, str) or w == g for g, w in pairs)


def _fit_shape(a: np.ndarray, t: TensorSpec, where: str) -> np.ndarray:
    """``a`` with per-sample shape ``t.shape`` (str dims match any size), or a one-line error."""
    got, want = a.shape[1:], t.shape
    if _fits(got, want):
        return a
    # a size-1 leading axis (a network's batch axis) may be given or left out: same data
    if want[:1] == (1,) and _fits(got, want[1:]):
        return a.reshape(len(a), 1, *got)
    if got[:1] == (1,) and _fits(got[1:], want):
        return a.reshape(len(a), *got[1:])
    raise InputSpecError(
        f"{where}: array {t.name!r} has per-sample shape {list(got)}, expected {list(want)}"
    )


def validate(arrays: Mapping[str, Any], spec: Spec, where: str) -> Arrays:
    """Check names, per-sample shapes, dtypes, finiteness and sample counts; one-line errors."""
    names = [t.name for t in spec]
    for what, bad in (
        ("missing", [n for n in names if n not in arrays]),
        ("unexpected", [n for n in arrays if n not in names]),
    ):
        if bad:
            listed, have = ", ".join(map(repr, bad)), ", ".join(map(repr, names))
            raise InputSpecError(f"{where}: {what} array {listed}; the observation has {have}")
    out: Arrays = {}
    for t in spec:
        a = np.asarray(arrays[t.name])
        if a.ndim == 0:
            raise InputSpecError(f"{where}: array {t.name!r} is a scalar; axis 0 must be samples")
        a = _fit_shape(a, t, where)
        if a.dtype != np.dtype(t.dtype):
            raise InputSpecError(
                f"{where}: array {t.name!r} has dtype {a.dtype}, expected {t.dtype} "
                f"(cast it with .astype(np.{np.dtype(t.dtype).name}))"
            )
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = ~np.isfinite(a).reshape(len(a), -1)
            first = int(np.flatnonzero(bad.any(axis=1))[0])
            raise InputSpecError(
                f"{where}: array {t.name!r} has {int(bad.sum())} NaN/Inf values "
                f"(first in sample {first})"
            )
        out[t.name] = a
    counts = {k: len(v) for k, v in out.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{k!r} {c}" for k, c in counts.items())
        raise InputSpecError(f"{where}: arrays have different sample counts ({listed})")
    return out


def _read_npz(path: Path) -> Arrays:
    with path.open("rb") as fh:  # np.load would try to unpickle a file that is not a zip
        magic = fh.read(6)
    if not magic.startswith(b"PK"):
        why = "an .npy array, not named arrays" if magic == b"\x93NUMPY" else "not a zip archive"
        raise InputSpecError(f"{path}: not a readable .npz file ({why})")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # any corrupt/unreadable file: one line, no traceback
        msg = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
        raise InputSpecError(f"{path}: not a readable .npz file ({msg})") from None


def load_calibration(
    path: str | Path,
    observation_spec: Spec,
    min_samples: int = 4,
    bounds: Mapping[str, tuple[int, int]] | None = None,
) -> CalibrationSet:
    """Read an ``.npz`` (or a folder of them, sorted by name) and validate it against the spec.

    ``bounds`` gives the valid ``[low, high)`` of integer arrays where the model knows it
    (token ids and its vocabulary, see :func:`edgekit.validate.observation_bounds`).
    """
    from edgekit.validate import int_ranges

    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".npz" and f.is_file())
        if not files:
            raise InputSpecError(f"{p}: folder holds no .npz calibration files")
    elif p.is_file():
        files = [p]
    else:
        raise InputSpecError(f"{p}: no such calibration file or folder")
    parts = [validate(_read_npz(f), observation_spec, str(f)) for f in files]
    for f, part in zip(files, parts, strict=True):
        int_ranges(part, bounds or {}, str(f))
    arrays = {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    cal = CalibrationSet(arrays, str(p))
    if cal.n < min_samples:
        first = next(iter(arrays), "?")
        msg = f"array {first!r} holds {cal.n} samples, need at least {min_samples}"
        raise InputSpecError(f"{p}: {msg}")
    return cal


def from_recordings(
    episodes: Sequence[Mapping[str, Any]] | Sequence[Sequence[Mapping[str, Any]]],
    observation_spec: Spec,
) -> CalibrationSet:
    """Stack recorded ticks (a list of observation dicts, or episodes = lists of them) in order."""
    single = bool(episodes) and isinstance(episodes[0], Mapping)
    eps = cast("Sequence[Sequence[Mapping[str, Any]]]", [episodes] if single else episodes)
    parts = []
    for e, ep in enumerate(eps):
        for i, tick in enumerate(ep):
            one = {k: np.asarray(v)[None] for k, v in tick.items()}
            parts.append(validate(one, observation_spec, f"recordings: episode {e} tick {i}"))
    if not parts:
        raise InputSpecError("recordings: no ticks given")
    return CalibrationSet(
        {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}, "recordings"
    )


def save_calibration(path: str | Path, arrays: Mapping[str, np.ndarray] | CalibrationSet) -> Path:
    """Write a compressed ``.npz`` atomically, byte-for-byte reproducible (fixed zip times)."""
    data = arrays.arrays if isinstance(arrays, CalibrationSet) else arrays
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, value in data.items():
                a = np.asarray(value, order="C")
                if a.dtype.hasobject:
                    raise InputSpecError(f"{p}: array {name!r} holds Python objects")
                buf = io.BytesIO()
                np.lib.format.write_array(buf, a, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), zipfile.ZIP_DEFLATED, 9)
        tmp.replace(p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


# --- synthetic episodes ---------------------------------------------------------------------


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
