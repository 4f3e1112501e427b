"""Plugin loop programs: a :class:`~edgekit.loop.LoopProgram` subclass in the user's own code.

When a tick does not fit the declared blocks, a factory names its own program class instead
(``UserModel(tick="my_tick.py:MyTick", tick_params={...})``). The artifact records the class's
import reference (a ``.py`` path made absolute) and the sha256 of its source file, and every
later stage (quantize, bench, eval, the robot) imports it back from there.

It is code, so the trust rule of factories holds: a plugin runs when the user named it (the
factory that declares it trusts it for the rest of the process); an artifact that names a
plugin is only imported with ``--allow-plugin``; and never when the source file changed since
the artifact was made (its hash differs), or when it is not a LoopProgram.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loop import LoopProgram
from edgekit.usercode import UserCode, import_factory

PLUGIN = "plugin"  # the program name a plugin is stored under
_trusted: set[tuple[str, str]] = set()
_allow = {"on": False}


def allow_plugins(on: bool = True) -> None:
    """``--allow-plugin``: import the plugin programs and factories that artifacts name."""
    _allow["on"] = on


def plugins_allowed() -> bool:
    """Whether ``--allow-plugin`` was given (a data file may then name a plugin program)."""
    return _allow["on"]


# Factories the user named in this process (the command's model, a recipe's model): an
# artifact made from one may load it again without --allow-plugin.
_named_factories: set[str] = set()


def trust_factory(ref: str) -> None:
    """A factory reference the user gave (its recorded, absolute form)."""
    _named_factories.add(ref)


def forget_factories() -> None:
    """A new command (in-process CLI runs behave as separate processes)."""
    _named_factories.clear()


def code_trusted(ref: str) -> bool:
    """Whether the factory ``ref`` may be imported: the user named it in this process, or
    passed ``--allow-plugin``."""
    return _allow["on"] or ref in _named_factories


def check_named_code(ref: str, what: str) -> None:
    """Refuse to import ``ref``, a factory an artifact's manifest names (code from a data
    file), unless :func:`code_trusted`."""
    if code_trusted(ref):
        return
    raise BadInputError(
        f"{what} is the factory {ref} (code an artifact names, imported only with "
        "--allow-plugin); pass --allow-plugin if you trust it"
    )


def absolute_ref(ref: str, base: Path | None = None) -> str:
    """``my_tick.py:MyTick`` with its path made absolute (``pkg.module:Class`` as is)."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not attr:
        raise BadInputError(f"plugin {ref!r}: expected FILE.py:Class or package.module:Class")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        return f"{path.resolve()}:{attr}"
    return ref


def source_file(ref: str) -> Path:
    target = ref.rpartition(":")[0]
    if target.endswith(".py"):
        return Path(target)
    spec = importlib.util.find_spec(target)
    if spec is None or spec.origin is None:
        raise ModelLoadError(f"plugin {ref}: cannot find module {target!r}")
    return Path(spec.origin)


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ModelLoadError(f"plugin source {path}: cannot read it ({e.strerror})") from None


def _import_class(ref: str, guard: UserCode | None = None) -> type[LoopProgram]:
    cls = import_factory(ref, guard)
    if not (inspect.isclass(cls) and issubclass(cls, LoopProgram)):
        raise ModelLoadError(f"plugin {ref}: not a LoopProgram subclass (edgekit.loop)")
    return cls


def declare_plugin(
    ref: str, params: dict[str, Any], guard: UserCode | None = None
) -> dict[str, Any]:
    """Import a user-named plugin, check it builds with ``params``, and return the program
    params an artifact stores (reference, source hash, the plugin's own params)."""
    ref = absolute_ref(ref)
    cls = _import_class(ref, guard)
    try:
        cls(dict(params))
    except Exception as e:
        raise ModelLoadError(f"plugin {ref}: {cls.__name__}(params) raised "
                             f"{type(e).__name__}: {e}") from None  # fmt: skip
    sha = _sha256(source_file(ref))
    _trusted.add((ref, sha))
    return {"ref": ref, "class": cls.__name__, "sha256": sha, "params": dict(params)}


def load_plugin(stored: dict[str, Any]) -> LoopProgram:
    """The plugin program an artifact names, after the trust and source-hash checks."""
    ref, sha = str(stored.get("ref", "")), str(stored.get("sha256", ""))
    if (ref, sha) not in _trusted and not _allow["on"]:
        raise BadInputError(
            f"this model's tick is the plugin program {ref} (code); pass --allow-plugin to "
            "import it if you trust it"
        )
    now = _sha256(source_file(ref))
    if now != sha:
        raise BadInputError(
            f"plugin {ref}: its source changed since the artifact was made (sha256 {now[:12]} "
            f"!= {sha[:12]}); restore it, or re-export the model"
        )
    cls = _import_class(ref)
    _trusted.add((ref, sha))
    return cls(dict(stored.get("params") or {}))
