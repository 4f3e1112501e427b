"""The run folder as a stage cache: content keys of a stage's inputs and the record that lets
a rerun reuse its artifact (see :mod:`edgekit.run.runner`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError


def cached_record(record_path: Path, key: str, folder: Path) -> dict[str, Any] | None:
    """The record of a stage run earlier with the same ``key`` whose artifact still verifies."""
    from edgekit.artifacts import load_artifact

    if not record_path.is_file() or not folder.is_dir():
        return None
    try:
        record = json.loads(record_path.read_text())
        if record.get("key") != key:
            return None
        load_artifact(folder, verify=True)  # the files are still what the stage wrote
    except (OSError, ValueError, EdgekitError):
        return None
    return dict(record)


def content_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_key(ref: str | None) -> str | None:
    """Content hash of a file or folder reference (None for zoo/module references)."""
    if ref is None:
        return None
    p = Path(ref)
    if p.is_file():
        from edgekit.artifacts import sha256_file

        return sha256_file(p)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(f.read_bytes())
        return h.hexdigest()
    return None


def model_key(ref: str) -> str | None:
    """Content hash of the model reference: a model file or folder, or a factory's source file
    (``FILE.py:factory``, or ``pkg.module:factory``'s module, found without importing it), so
    an edited ``forward`` is not served from the cache. A zoo model's code is edgekit's (the
    version is in every key); a factory's weights are only hashed through ``weights:`` (what it
    loads itself, or code in other modules it imports, is not seen without running it)."""
    from edgekit.usercode import factory_source

    source = factory_source(ref)
    return file_key(str(source)) if source is not None else file_key(ref)


def edgekit_version() -> str:
    from edgekit import __version__

    return __version__
