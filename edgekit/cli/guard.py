"""What the ``edgekit`` entry point does around every command: signals, OS errors, claims,
and where output goes (``--json -``, ``--quiet``).

SIGINT and SIGTERM raise :class:`~edgekit.errors.Signalled` in the main thread, so the command
unwinds like any failure: staging folders, temporary folders and lock files are removed by the
``finally`` blocks that own them, then the CLI prints one line and exits 130 or 143. Python's own
SIGINT handling cannot serve: click turns ``KeyboardInterrupt`` into a silent exit, and SIGTERM
would kill the process with no cleanup at all.
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from edgekit.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Signalled

if TYPE_CHECKING:
    from edgekit.gates import Gated

_SIGNALS = {
    signal.SIGINT: ("interrupted", EXIT_INTERRUPTED),
    signal.SIGTERM: ("terminated", EXIT_TERMINATED),
}


def _raise(signum: int, frame: FrameType | None) -> None:
    message, code = _SIGNALS[signal.Signals(signum)]
    raise Signalled(message, code)


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Within the block SIGINT/SIGTERM raise :class:`Signalled`; the old handlers come back.

    A signal the parent set to be ignored (``nohup``, a background job's SIGINT) stays ignored.
    """
    old: dict[signal.Signals, Any] = {}
    for sig in _SIGNALS:
        current = signal.getsignal(sig)
        if current is signal.SIG_IGN:
            continue
        old[sig] = current
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def late_signals() -> None:
    """After the command (the console script's last moments): SIGINT/SIGTERM print their one
    line and end the process at once with 130/143; there is nothing left to clean up."""

    def say(signum: int, frame: FrameType | None) -> None:
        message, code = _SIGNALS[signal.Signals(signum)]
        os.write(2, f"error: {message}\n".encode())
        os._exit(code)

    for sig in _SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, say)


def _writer() -> bool:
    """False on a torchrun rank other than 0: only rank 0 writes outputs."""
    return os.environ.get("RANK", "0") == "0"


def check_json(json_out: Path | str | None) -> None:
    """Fail now (exit 2) when ``--json`` cannot be written later ('-' is stdout)."""
    from edgekit.destinations import check_json_dest

    if json_out is not None and str(json_out) != "-" and _writer():
        check_json_dest(Path(json_out))


def claimed(out: Path, json_out: Path | str | None = None) -> Any:
    """Check ``--json`` and claim ``--out`` (see :mod:`edgekit.destinations`) before any work.

    Returns a context manager that holds the claim. Under torchrun the ranks other than 0 write
    nothing, so they neither check nor lock (they would find rank 0's lock).
    """
    from edgekit.destinations import claim_out

    check_json(json_out)
    return claim_out(out) if _writer() else nullcontext()


class _Discard(io.TextIOBase):
    """A text stream that drops what is written to it (``--quiet``)."""

    def write(self, s: str) -> int:
        return len(s)

    def isatty(self) -> bool:
        return False


# set by output(): the process's stdout, and the stream the verdict line goes to
_out: dict[str, Any] = {"stdout": None, "verdict": None, "quiet": False}


def output(json_out: Path | str | None = None, quiet: bool = False) -> None:
    """Route this command's output, first thing in every command that prints.

    ``--json -``: stdout carries the JSON report and nothing else; what people read goes to
    stderr (or nowhere with ``--quiet``). ``--quiet``: only errors (stderr) and the verdict line
    (stdout), or nothing but the JSON with ``--json -``. Human output is whatever the command
    prints to ``sys.stdout``; :func:`json_stdout` and :func:`verdict_stdout` reach the real one.
    :func:`restore_output` (the entry point, after the command) puts it back.
    """
    restore_output()
    real = sys.stdout
    to_stdout = json_out is not None and str(json_out) == "-"
    human: Any = _Discard() if quiet else (sys.stderr if to_stdout else real)
    verdict: Any = real if quiet and not to_stdout else human
    _out.update(stdout=real, verdict=verdict, quiet=quiet)
    sys.stdout = human


def restore_output() -> None:
    """Undo :func:`output` (the entry point calls it when the command ends)."""
    if _out["stdout"] is not None:
        sys.stdout = _out["stdout"]
    _out.update(stdout=None, verdict=None, quiet=False)


def quiet() -> bool:
    """Whether this command runs with ``--quiet`` (progress displays stay off)."""
    return bool(_out["quiet"])


@contextmanager
def _stdout(stream: Any) -> Iterator[None]:
    saved = sys.stdout
    sys.stdout = stream if stream is not None else saved
    try:
        yield
    finally:
        sys.stdout = saved


def json_stdout() -> Any:
    """Within: ``sys.stdout`` is the process's stdout, where ``--json -`` writes."""
    return _stdout(_out["stdout"])


def verdict_stdout() -> Any:
    """Within: ``sys.stdout`` is where the verdict line goes (kept by ``--quiet``)."""
    return _stdout(_out["verdict"])


def put_json(json_out: Path | str, text: str) -> None:
    """``--json FILE`` written whole, or ``--json -``: the text on stdout."""
    if str(json_out) == "-":
        with json_stdout():
            sys.stdout.write(text)
            sys.stdout.flush()
        return
    from edgekit.destinations import write_text_atomic

    write_text_atomic(Path(json_out), text, "--json")


def os_error_line(e: OSError) -> str:
    """One line for an OS error no command turned into its own message: path and reason."""
    from edgekit.destinations import reason

    if e.filename:
        return f"{e.filename}: {reason(e)}"
    return f"{reason(e)} (rerun with --debug to see which file)"


def finish(result: Gated, json_out: Path | str | None = None, out: Path | None = None) -> None:
    """The one place a verb's gates become the exit code: write ``--json`` (the result's
    report, also when a gate failed; ``-``: on stdout), then exit 1 naming every failed gate.

    ``out``: the artifact the command wrote. When ``--json`` cannot be written (``/dev/full``)
    it is removed again, so a failed command never leaves an artifact that looks finished."""
    from edgekit.cli.render.json_report import write_json
    from edgekit.errors import DestinationError, GateFailed

    try:
        if json_out is not None and str(json_out) == "-":
            import json

            put_json("-", json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        elif json_out:
            write_json(Path(json_out), result.to_dict())
    except DestinationError as e:
        if out is None or not getattr(result, "written", False) or not Path(out).is_dir():
            raise
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        raise DestinationError(
            f"{e}; removed the artifact it reports on (--out {out}): rerun where the report "
            "can be written"
        ) from e
    if result.passed:
        return
    message = "; ".join(g.message for g in result.failed)
    if getattr(result, "written", True) is False:
        message += "; nothing written"
    raise GateFailed(message)
