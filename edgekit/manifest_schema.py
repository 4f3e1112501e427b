"""The schema of an artifact manifest (``edgekit.json``), validated on every load.

Artifacts are untrusted: a folder may be hand-edited, truncated or tampered with. The manifest is
checked against a strict, versioned pydantic schema before anything in it is used, so a damaged
field is a one-line error naming that field (``edgekit.json: files.policy.sha256: missing``,
exit 2) rather than a ``KeyError`` deep in a stage (exit 4). The shape is exactly what
:func:`edgekit.artifacts.write_manifest` writes; ``checks``, ``source``, ``model.config`` and
program ``params`` stay free-form dicts (stages add report fields there without a schema bump).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from edgekit.errors import BadInputError

Sampler = Literal["normal", "uniform", "int", "mask", "image"]  # = edgekit.spec.SAMPLERS


class _Strict(BaseModel):
    # strict: "1" is not an integer and 1.0 is not a version; forbid: a misspelled key is an
    # error, not silently ignored; NaN/Inf are no tolerance or loop rate
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class TensorModel(_Strict):
    name: str
    shape: list[int | str]
    dtype: str
    sampler: Sampler
    low: float
    high: float

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, v: str) -> str:
        try:
            np.dtype(v)
        except TypeError:
            raise ValueError(f"unknown dtype {v!r}") from None
        return v


class NetworkModel(_Strict):
    name: str
    inputs: list[TensorModel]
    outputs: list[TensorModel]
    sample_dims: dict[str, int]


class ToleranceModel(_Strict):
    atol: float = Field(ge=0)
    rtol: float = Field(ge=0)
    min_cosine: float


class ProgramModel(_Strict):
    name: str
    params: dict[str, Any]
    hz: float | None = Field(default=None, gt=0)


class SpecModel(_Strict):
    kind: str
    preset: str
    hz: float = Field(gt=0)
    config: dict[str, Any]
    tolerance: ToleranceModel
    tick_tolerance: ToleranceModel
    networks: list[NetworkModel] = Field(min_length=1)
    program: ProgramModel
    programs: dict[str, ProgramModel]


class FileEntry(_Strict):
    file: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ManifestModel(_Strict):
    """``edgekit.json`` as written by :func:`edgekit.artifacts.write_manifest`."""

    schema_version: int = Field(ge=1)
    stage: str
    format: str
    created: str
    source: dict[str, Any]
    model: SpecModel
    files: dict[str, FileEntry] = Field(min_length=1)
    checks: dict[str, Any]  # free-form: each stage's report
    versions: dict[str, str]


def _describe(err: Any) -> str:
    """One error of a ValidationError as ``field.path: what is wrong``."""
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind, got = err["type"], err.get("input")
    if kind == "missing":
        what = "missing"
    elif kind == "extra_forbidden":
        what = "unknown field"
    elif kind == "value_error":  # a field_validator's own message
        what = str(err["ctx"]["error"])
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        what = f"{err['msg'][0].lower()}{err['msg'][1:]} (got {got!r})"
    else:
        what = f"{err['msg'][0].lower()}{err['msg'][1:]}"
    return f"{where}: {what}"


def parse_manifest(text: str, mpath: Path, understood: int) -> ManifestModel:
    """Validate manifest text; one-line :class:`BadInputError` naming the field at fault.

    Args:
        text: the contents of ``edgekit.json``.
        mpath: its path (for messages).
        understood: the newest ``schema_version`` this edgekit reads.

    Raises:
        BadInputError: not JSON, a newer schema version, or a field missing/mistyped/unknown.
    """
    import json

    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{mpath}: not valid JSON ({e}); re-export the artifact") from None
    if not isinstance(raw, dict):
        raise BadInputError(f"{mpath}: expected a JSON object; re-export the artifact")
    version = raw.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > understood:
        # checked first: a newer manifest may have fields this schema does not know
        raise BadInputError(
            f"{mpath}: schema_version {version} is newer than this edgekit understands "
            f"({understood}); upgrade edgekit"
        )
    try:
        return ManifestModel.model_validate(raw, strict=True)
    except ValidationError as e:
        errors = e.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInputError(
            f"{mpath}: {_describe(errors[0])}{more}; the manifest is damaged or hand-edited: "
            "re-export the artifact"
        ) from None


def check_onnx_io(folder: Path, mpath: Path, manifest: ManifestModel) -> None:
    """Each ONNX file's graph inputs/outputs must be the ones the manifest's spec declares.

    A file swapped for another network's (or another model's) would otherwise run with feeds
    built from the wrong contract and fail deep inside onnxruntime.
    """
    import onnx
    from google.protobuf.message import DecodeError

    nets = {n.name: n for n in manifest.model.networks}
    for name, entry in manifest.files.items():
        if not entry.file.endswith(".onnx"):
            continue  # QNN context binaries, TensorRT engines: not ONNX graphs
        field = f"files.{name}"
        if name not in nets:
            known = ", ".join(nets)
            raise BadInputError(
                f"{mpath}: {field}: not a network of model.networks ({known}); re-export"
            )
        try:
            graph = onnx.load(str(folder / entry.file), load_external_data=False).graph
        except (DecodeError, ValueError, OSError, RuntimeError) as e:
            raise BadInputError(
                f"{mpath}: {field}: {entry.file} is not a readable ONNX model "
                f"({type(e).__name__}); re-export"
            ) from None
        init = {i.name for i in graph.initializer}
        have_in = sorted(v.name for v in graph.input if v.name not in init)
        have_out = sorted(v.name for v in graph.output)
        want_in = sorted(t.name for t in nets[name].inputs)
        want_out = sorted(t.name for t in nets[name].outputs)
        for what, have, want in (("inputs", have_in, want_in), ("outputs", have_out, want_out)):
            if have != want:
                raise BadInputError(
                    f"{mpath}: {field}: {entry.file} has {what} {have}, but model.networks "
                    f"declares {want} for {name!r}; the file or the manifest was changed: "
                    "re-export"
                )
