"""Run user code (a factory's module, the factory, its model's forward) without letting it end
or hang edgekit.

User code is trusted to be code (the user named it), but not to behave: a script's ``argparse``
at import time calls ``sys.exit``, a factory may raise ``KeyboardInterrupt`` or wait forever on a
checkpoint server. :class:`UserCode` turns each into a one-line :class:`ModelLoadError` (exit 2)
that names the factory, and bounds its run time when the user asked for ``--timeout``.

Limits of the timeout (``SIGALRM``, POSIX, main thread only): it fires between Python bytecodes,
so C code that never returns to the interpreter (a deadlocked native kernel) is not interrupted;
``os._exit`` and fatal signals still end the process; code that catches ``BaseException`` can
swallow it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from edgekit.errors import EXTRAS, BackendMissingError, BadInputError, ModelLoadError


class _Timeout(BaseException):
    """Raised in user code when ``--timeout`` runs out: a BaseException so that the user's own
    ``except Exception`` cannot swallow it."""


def check_timeout(timeout: float | None) -> None:
    """Refuse a ``--timeout`` that is not a positive number of seconds, or that cannot work here."""
    if timeout is None:
        return
    if not timeout > 0 or timeout == float("inf"):
        raise BadInputError(f"--timeout {timeout}: expected a positive number of seconds")
    if not hasattr(signal, "setitimer"):
        raise BackendMissingError("--timeout needs POSIX signals (SIGALRM); not on this platform")
    if threading.current_thread() is not threading.main_thread():
        raise BackendMissingError("--timeout only works in the main thread (signals)")


@contextlib.contextmanager
def _alarm(timeout: float | None) -> Iterator[None]:
    if timeout is None:
        yield
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, ring)
    start = time.monotonic()
    theirs, _ = signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if theirs > 0:  # the caller's own alarm keeps running (late rather than lost)
            signal.setitimer(signal.ITIMER_REAL, max(theirs - (time.monotonic() - start), 1e-3))


@contextlib.contextmanager
def _real_interrupts() -> Iterator[list[bool]]:
    """Record whether a real Ctrl-C (SIGINT) arrived, so that it still stops edgekit (exit 130)
    while a ``KeyboardInterrupt`` raised by user code itself is reported as the factory's fault."""
    seen = [False]
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):  # not ours to change (ignored in a background job, or the caller's own handler)
        yield seen
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        seen[0] = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


_default: dict[str, float | None] = {"timeout": None}


def default_timeout(timeout: float | None) -> None:
    """``--timeout`` for every piece of user code the command runs, not only its main model's
    (a ``--student`` factory, a teacher, a plugin's module): each :class:`UserCode` made
    without a timeout of its own gets this one."""
    check_timeout(timeout)
    _default["timeout"] = timeout


class UserCode:
    """The guard around one model reference's user code; ``timeout`` seconds (None: the
    command's ``--timeout``, if any) bound all of it together: the import, the factory call and
    the sample forward pass."""

    def __init__(self, ref: str, timeout: float | None = None) -> None:
        timeout = _default["timeout"] if timeout is None else timeout
        check_timeout(timeout)
        self.ref, self.timeout = ref, timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout

    @contextlib.contextmanager
    def run(self, what: str) -> Iterator[None]:
        """Run the block as user code (``what``: "importing X", "the factory"...).

        ``SystemExit``, a ``KeyboardInterrupt`` the code raised itself, and running past the
        timeout become a :class:`ModelLoadError` naming the reference. What the code writes to
        ``sys.stderr`` is held back and replayed, except when it exits: then its last line
        (e.g. argparse's complaint) goes into the one error line instead.
        """
        left = None if self._deadline is None else self._deadline - time.monotonic()
        held = io.StringIO()
        exited = False
        try:
            if left is not None and left <= 0:
                raise _Timeout
            with (
                _real_interrupts() as interrupted,
                contextlib.redirect_stderr(held),
                _alarm(left),
            ):
                yield
        except SystemExit as e:
            exited = True
            said = [ln.strip() for ln in held.getvalue().splitlines() if ln.strip()]
            last = f"; it printed {said[-1]!r}" if said else ""
            raise ModelLoadError(
                f"{self.ref}: {what} tried to end the process (SystemExit {e.code!r}){last}; "
                "edgekit does not exit on behalf of user code: guard script code with "
                "`if __name__ == '__main__':` and return the model from the factory"
            ) from None
        except KeyboardInterrupt:
            if interrupted[0]:
                raise
            raise ModelLoadError(
                f"{self.ref}: {what} raised KeyboardInterrupt; a factory must return the model "
                "or raise an ordinary exception"
            ) from None
        except _Timeout:
            raise ModelLoadError(
                f"{self.ref}: {what} did not finish within --timeout {self.timeout:g} s (import, "
                "factory and sample forward together); raise --timeout, or make it return"
            ) from None
        finally:
            if not exited:
                sys.stderr.write(held.getvalue())


def import_factory(ref: str, guard: UserCode | None = None) -> Callable[..., Any]:
    """Import the factory of ``FILE.py:factory`` or ``package.module:factory``, running the
    module's top-level code under ``guard`` (default: no timeout)."""
    guard = guard or UserCode(ref)
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ModelLoadError(f"{ref}: no such file {target}")
        mod_name = f"edgekit_user_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"{ref}: cannot import {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            with guard.run(f"importing {target}"):
                spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[mod_name]  # a half-run module must not be found next time
            if isinstance(e, ModelLoadError):
                raise
            _missing_extra(ref, target, e)
            raise ModelLoadError(
                f"{ref}: importing {target} failed: {type(e).__name__}: {e}"
            ) from e
    else:
        if not all(p.isidentifier() for p in target.split(".")):
            raise ModelLoadError(f"{ref}: no such file, and {target!r} is not a module name")
        try:
            with guard.run(f"importing {target}"):
                module = importlib.import_module(target)
        except ImportError as e:
            _missing_extra(ref, target, e)
            raise ModelLoadError(f"{ref}: cannot import module {target!r} ({e})") from None
        except ModelLoadError:
            raise
        except Exception as e:  # the module's own top-level code failed: the user's bug
            raise ModelLoadError(
                f"{ref}: importing {target} failed: {type(e).__name__}: {e}"
            ) from e
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ModelLoadError(f"{ref}: {target} has no callable {attr!r}")
    return fn


def _missing_extra(ref: str, target: str, e: BaseException) -> None:
    """User code that needs a package an edgekit extra installs (torch on a robot install):
    exit 3 naming the extra, as edgekit's own code would, not a bad-input error."""
    if isinstance(e, ModuleNotFoundError):
        extra = EXTRAS.get((e.name or "").partition(".")[0])
        if extra is not None:
            raise BackendMissingError(
                f"{ref}: importing {target} needs {e.name}, which is not installed here: "
                f"pip install 'edgekit[{extra}]'"
            ) from None


def factory_source(ref: str) -> Path | None:
    """The source file of a ``FILE.py:factory`` / ``package.module:factory`` reference, found
    as ``import`` would find it but without importing anything (not even the module's parent
    packages); None when there is none (a zoo reference, a model file, a module that cannot be
    found or has no source file)."""
    target, sep, _ = ref.rpartition(":")
    if not sep or ref.startswith("zoo:"):
        return None
    if target.endswith(".py"):
        return Path(target) if Path(target).is_file() else None
    parts = target.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    spec, search = None, None
    for i in range(len(parts)):
        spec = _find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    origin = spec.origin if spec is not None else None
    return Path(origin) if origin and Path(origin).is_file() else None


def _find_spec(name: str, search: list[str] | None) -> Any:
    """Ask the import system's finders (path entries, editable installs) for ``name``'s spec,
    given its parent package's search locations; nothing is imported."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        try:
            spec = find(name, search) if find else None
        except Exception:  # a third-party finder's own failure: treat as not found
            spec = None
        if spec is not None:
            return spec
    return None
