"""Where commands write: checked before any work, claimed against other processes, written whole.

* :func:`check_json_dest` and :func:`claim_out` run before a command loads its model, so a
  destination that cannot be written (read-only or full file system, a folder that is missing
  or is a file, ``/proc``...) fails in a second instead of after a long job. They *try* writing
  (a probe file, the lock file) because permission bits say nothing for root or a read-only
  mount.
* :func:`claim_out` also locks the output folder: a ``.<name>.lock`` file next to it, held with
  ``fcntl.flock`` for the whole command and removed afterwards. A second process that wants
  the same folder gets exit 2 at once naming the holder's pid. It does not wait: a CI job that
  silently queued behind another writer of the same folder would most likely be a mistake, and
  failing says so; the lock is released by the kernel if its holder dies, so it never goes
  stale.
* :func:`write_text_atomic` is the one helper that writes a report file: a temporary sibling,
  then a rename, so a reader never sees half a file.

An ``OSError`` while writing becomes :class:`~edgekit.errors.DestinationError` (exit 2, one line
naming the path and the OS's reason): the disk, the mount or the path is the user's to fix.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgekit.errors import DestinationError

# Lock files this process holds (absolute path -> fd): the CLI claims --out, then the library's
# staging claims it again; flock would refuse the second open of the same file, so nest instead.
_held: dict[str, int] = {}


def reason(e: OSError) -> str:
    """The OS's words for ``e`` ("No space left on device"), without Python's decoration."""
    return e.strerror or str(e)


def _named(flag: str, path: Path) -> str:
    return f"{flag} {path}" if flag else str(path)


@contextmanager
def user_writes(path: str | Path, flag: str = "") -> Iterator[None]:
    """Turn an ``OSError`` raised inside into a one-line :class:`DestinationError` on ``path``."""
    try:
        yield
    except OSError as e:
        raise DestinationError(f"{_named(flag, Path(path))}: cannot write ({reason(e)})") from e


def _existing_ancestor(folder: Path, flag: str, path: Path) -> tuple[Path, list[Path]]:
    """The nearest existing ancestor of ``folder`` (must be a folder) and the missing ones."""
    missing = []
    p = folder
    while not p.exists() and p.parent != p:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise DestinationError(f"{_named(flag, path)}: {p} is a file, not a folder")
    return p, missing


def _probe(folder: Path, flag: str, path: Path) -> None:
    """Create, write one byte to and remove a hidden file in ``folder``."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=folder)
        try:
            os.write(fd, b"\n")  # an empty file fits on a full disk; one byte does not
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        raise DestinationError(
            f"{_named(flag, path)}: cannot write in {folder} ({reason(e)}); choose another place"
        ) from e


def _special(path: Path) -> bool:
    """An existing device or pipe (``/dev/null``, ``/dev/stdout``): written in place."""
    return path.exists() and not path.is_file() and not path.is_dir()


def check_json_dest(path: str | Path, flag: str = "--json") -> None:
    """Fail now (exit 2) if a report file cannot be written at ``path`` later.

    Its folder must exist (a typo in it should not create a stray folder tree) and accept a
    file. A device or pipe is accepted as is: it is written in place, and an error writing it
    (``/dev/full``) still comes as one line then.
    """
    path = Path(path)
    if path.is_dir():
        raise DestinationError(f"{flag} {path}: is a folder; give a file name")
    if _special(path):
        return
    ancestor, missing = _existing_ancestor(path.parent, flag, path)
    if missing:
        raise DestinationError(
            f"{flag} {path}: folder {path.parent} does not exist; create it first"
        )
    _probe(ancestor, flag, path)


def write_text_atomic(path: str | Path, text: str, flag: str = "") -> Path:
    """Write ``text`` to ``path`` whole: a temporary sibling renamed over it, removed on failure.

    A device or pipe (``/dev/null``) is written in place, never replaced by a file.

    Raises:
        DestinationError: the OS refused (exit 2), naming ``path``.
    """
    path = Path(path)
    if _special(path):
        with user_writes(path, flag), open(path, "w") as f:
            f.write(text)
        return path
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with user_writes(path, flag):
            tmp.write_text(text)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after the rename; left by a failed or cut write
    return path


def save_figure(fig: Any, path: str | Path, dpi: int) -> Path:
    """A matplotlib figure written whole, as :func:`write_text_atomic` writes text: a full disk
    leaves no half PNG and names the file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        with user_writes(path):
            fig.savefig(tmp, dpi=dpi)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextmanager
def new_folder(out: Path, flag: str = "--out") -> Iterator[Path]:
    """``out`` made for a command that writes into it (``edgekit run``'s run folder, kept as
    a cache): if it did not exist and the OS refuses a write inside (a full disk), the folder
    goes again, so no half-written run is left; an existing one keeps what it held."""
    created = not out.exists()
    with user_writes(out, flag):
        out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    except (OSError, DestinationError) as e:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError):
            where = f"{e.filename}: " if e.filename else ""
            raise DestinationError(f"{flag} {out}: cannot write ({where}{reason(e)})") from e
        raise


@contextmanager
def claim_out(out: str | Path, flag: str = "--out") -> Iterator[Path]:
    """Hold ``out`` for this process: its folder is checked writable and locked until exit.

    Missing parent folders are created (as ``mkdir -p``) and removed again if they are still
    empty at the end (the command failed). Nested claims of the same folder in one process are
    no-ops.

    Raises:
        DestinationError: ``out`` cannot be written there, or another process holds it (exit 2).
    """
    out = Path(out)
    lock = out.parent / f".{out.name}.lock"
    key = os.path.abspath(lock)
    if key in _held:
        yield out
        return
    _, missing = _existing_ancestor(out.parent, flag, out)
    created: list[Path] = []
    try:
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:  # made meanwhile by someone else: theirs to keep
                continue
            except OSError as e:
                raise DestinationError(
                    f"{flag} {out}: cannot create folder {d} ({reason(e)}); choose another place"
                ) from e
            created.append(d)
        fd = _lock(lock, flag, out)
        try:
            if out.is_dir():  # a run folder is written into, a --force one replaced
                _probe(out, flag, out)
            _held[key] = fd
            try:
                yield out
            finally:
                del _held[key]
        finally:
            lock.unlink(missing_ok=True)  # while still locked: see _lock
            os.close(fd)
    finally:
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:  # holds the output now: keep it
                break


def _lock(lock: Path, flag: str, out: Path) -> int:
    """Open, ``flock`` and stamp (pid) the lock file; its write doubles as the space probe."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DestinationError(
                f"{flag} {out}: cannot write in {lock.parent} ({reason(e)}); choose another place"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DestinationError(
                f"{flag} {out}: is being written by another edgekit process (pid {pid}); "
                "wait for it to finish or choose another folder"
            ) from None
        # The holder unlinks the file before it unlocks, so between our open and our flock it
        # may have gone: we would then hold a lock nobody else sees. Start again on the new one.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as e:
        lock.unlink(missing_ok=True)
        os.close(fd)
        raise DestinationError(
            f"{flag} {out}: cannot write in {lock.parent} ({reason(e)}); choose another place"
        ) from e
    return fd
