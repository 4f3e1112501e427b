"""Let ``edgekit.export(...)`` be both a call and the ``edgekit.export`` package.

Importing a subpackage sets it as an attribute of its parent, which would replace a function of
the same name in ``edgekit/__init__.py``. Instead, the subpackage module itself is made callable.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_callable(module_name: str, fn: Callable[..., Any]) -> None:
    class CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
