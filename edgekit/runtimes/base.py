"""What every runtime shares: the thread default and the import of an optional backend."""

from __future__ import annotations

import os
from typing import Any

from edgekit.errors import BackendMissingError


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def require(module: str, extra: str) -> Any:
    """Import an optional backend or fail with the install command (exit code 3)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BackendMissingError(
            f"{module} is not installed; install it with `pip install 'edgekit[{extra}]'`"
        ) from None
