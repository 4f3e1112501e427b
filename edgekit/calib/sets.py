"""Calibration sets: the observations a loop program sees, validated, loaded, saved."""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from edgekit.errors import InputSpecError
from edgekit.spec import TensorSpec

Arrays = dict[str, np.ndarray]
Spec = Sequence[TensorSpec]


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
