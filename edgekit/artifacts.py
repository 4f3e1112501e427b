"""Artifact folders: what each stage writes and the next one reads.

An artifact folder holds the stage's files (ONNX networks, ...) and a manifest ``edgekit.json``:
source reference and hash, stage, the model spec (io contract + loop program), checks such as
parity, and the library versions. Folders are written atomically: everything goes to a hidden
temporary sibling that is renamed into place only when the stage succeeded, so a failed or
interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError, DestinationError, OutputExistsError
from edgekit.spec import ModelSpec

MANIFEST = "edgekit.json"
SCHEMA_VERSION = 1


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def versions() -> dict[str, str]:
    """Versions of edgekit and of every backend that is importable, plus the host."""
    from importlib import metadata

    out = {"edgekit": _version("edgekit"), "python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", "onnxscript", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _version(pkg: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Manifest:
    """The contents of ``edgekit.json``."""

    stage: str
    format: str
    source: dict[str, Any]
    spec: ModelSpec
    files: dict[str, dict[str, str]]  # network name -> {"file": ..., "sha256": ...}
    checks: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=versions)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "stage": self.stage,
            "format": self.format,
            "created": self.created,
            "source": self.source,
            "model": self.spec.to_dict(),
            "files": self.files,
            "checks": self.checks,
            "versions": self.versions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            stage=d["stage"],
            format=d["format"],
            source=d["source"],
            spec=ModelSpec.from_dict(d["model"]),
            files=d["files"],
            checks=d.get("checks", {}),
            versions=d.get("versions", {}),
            created=d.get("created", ""),
            schema_version=d.get("schema_version", SCHEMA_VERSION),
        )


@dataclass
class Artifact:
    """An artifact folder on disk and its manifest."""

    path: Path
    manifest: Manifest

    def file(self, network: str) -> Path:
        return self.path / self.manifest.files[network]["file"]


def is_artifact(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def load_artifact(path: str | Path, verify: bool = True) -> Artifact:
    """Read an artifact folder: validate its manifest (schema) and, with ``verify``, its files.

    Verification checks every file entry: inside the folder, present, its sha256 as recorded,
    and for ONNX files the graph inputs/outputs the manifest's spec declares.

    Raises:
        BadInputError: not an artifact, a damaged manifest (the message names the field, e.g.
            ``edgekit.json: files.policy.sha256: missing``), or a missing/changed file.
    """
    from edgekit.manifest_schema import check_onnx_io, parse_manifest

    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BadInputError(f"{path}: not an edgekit artifact folder (no {MANIFEST})")
    try:
        text = mpath.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{mpath}: unreadable manifest ({type(e).__name__}: {e})") from None
    model = parse_manifest(text, mpath, SCHEMA_VERSION)
    try:
        manifest = Manifest.from_dict(model.model_dump())
    except (KeyError, TypeError, ValueError, BadInputError) as e:  # beyond the schema
        raise BadInputError(f"{mpath}: model: {e}; re-export the artifact") from None
    art = Artifact(path, manifest)
    if verify:
        for name, entry in model.files.items():
            field = f"files.{name}"
            f = path / entry.file
            if not f.resolve().is_relative_to(path.resolve()):
                raise BadInputError(f"{mpath}: {field}.file: points outside the folder")
            if not f.is_file():
                raise BadInputError(f"{mpath}: {field}.file: {entry.file} is missing")
            if sha256_file(f) != entry.sha256:
                raise BadInputError(
                    f"{mpath}: {field}.sha256: the file's sha256 does not match ({entry.file} "
                    "changed after it was written); re-export the artifact"
                )
        check_onnx_io(path, mpath, model)
    return art


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an existing non-empty output folder unless ``force``; fail before any work."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(
            f"--out {out}: folder exists and is not empty; pass --force to replace it"
        )


# OS errors that say "this destination cannot take the output" wherever they come from.
_FULL_OR_READ_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


@contextmanager
def staging_dir(out: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary folder next to ``out``; on success it replaces ``out`` atomically.

    ``raise Discard()`` inside the block drops the folder and leaves ``out`` as it was (an
    artifact that missed its gate is not written).

    On any failure, a signal included, the temporary folder is removed. An ``OSError`` writing
    it (full disk...) becomes a one-line :class:`~edgekit.errors.DestinationError` on ``out``.
    """
    from edgekit.destinations import claim_out, reason

    if out.is_symlink():  # write where it points (replacing the link would leave it behind)
        out = Path(os.path.realpath(out))
    check_out_dir(out, force)
    with claim_out(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the artifact is an ordinary folder
        try:
            yield tmp
            old = None
            if out.exists():
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.replace(out, old)
            os.replace(tmp, out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            _sweep(out)
        except Discard:
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if e.errno in _FULL_OR_READ_ONLY or str(tmp) in str(e.filename or ""):
                raise DestinationError(f"--out {out}: cannot write ({reason(e)})") from e
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _sweep(out: Path) -> None:
    """Remove the staging folders a killed edgekit process (SIGKILL, a power cut) left beside
    ``out``: the caller holds ``out``'s lock, so no live process is writing them."""
    for kind in ("tmp", "old"):  # staging_dir's own names (mkdtemp's, and the replaced one's)
        for stale in out.parent.glob(f".{glob.escape(out.name)}.{kind}-*"):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)


class Discard(Exception):
    """Raised inside :func:`staging_dir`: drop the staged artifact, write nothing."""


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    return path
