"""Plain progress lines for CI and logs: one line when a step starts and ends, and a heartbeat
at least every ``interval`` seconds while the command runs (CI services kill a job that prints
nothing for 10 minutes), all on stderr: stdout may carry ``--json -``.

    [edgekit] quantize: calibrating denoiser ...
    [edgekit] quantize: calibrating denoiser 12/32 (1m05s, ETA 1m49s)
    [edgekit] quantize: calibrating denoiser done 32/32 (2m54s)

The heartbeat thread sleeps between lines; it also writes during a timed section (a long
measurement on a slow simulator must not look hung to CI), at most one line per interval.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import IO

from edgekit.progress import Clock, Sink, Task, active, timing


def duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``1m05s``, ``2h03m``."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def status(task: Task) -> str:
    """``12/32 (1m05s, ETA 1m49s) loss 0.012``: a task's counts, times and status text."""
    times = duration(task.elapsed)
    eta = task.eta()
    if eta is not None:
        times += f", ETA {duration(eta)}"
    text = f"{task.counts} ({times})" if task.counts else f"({times})"
    return f"{text} {task.info}" if task.info else text


def _within(text: str) -> str:
    """``text`` after the path of the task running now (a timed section inside a step)."""
    tasks = active()
    return f"{tasks[-1].path}: {text}" if tasks else text


def stderr_stream() -> IO[str]:
    """A stream on the process's stderr that stays there while fd 2 is redirected (native
    output captured) or ``sys.stderr`` is swapped (a library's output swallowed)."""
    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # no real file behind sys.stderr (tests)
        return sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")


class LineSink(Sink):
    """Progress as plain lines on ``stream`` (default: stderr), with a heartbeat thread.

    Use as a context manager (starts and stops the heartbeat). ``quiet``: prints nothing.
    ``clock`` and :meth:`beat` let tests drive the heartbeat without waiting."""

    def __init__(
        self,
        command: str,
        *,
        stream: IO[str] | None = None,
        interval: float = 30.0,
        quiet: bool = False,
        clock: Clock = time.monotonic,
        prefix: str = "[edgekit]",
    ) -> None:
        self.command, self.interval, self.quiet, self.clock = command, interval, quiet, clock
        self.prefix = f"{prefix} {command}: " if command else f"{prefix} "
        self._own_stream = stream is None and not quiet
        self.stream: IO[str] | None = None if quiet else (stream or stderr_stream())
        self.started = clock()
        self.last_line = self.started
        self._timed = ("", self.started)  # the timed section running: what, since when
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LineSink:
        if not self.quiet and self.interval > 0:
            self._thread = threading.Thread(target=self._beat_loop, name="edgekit-heartbeat")
            self._thread.daemon = True
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._own_stream and self.stream is not None and self.stream is not sys.stderr:
            self.stream.close()

    # --- the sink ----------------------------------------------------------------------------

    def start(self, task: Task) -> None:
        self.line(f"{task.path} ...")

    def end(self, task: Task) -> None:
        word = "failed" if task.failed else "done"
        counts = f" {task.counts}" if task.counts else ""
        info = f" {task.info}" if task.info else ""
        self.line(f"{task.path} {word}{counts} ({duration(task.elapsed)}){info}")

    def note(self, text: str) -> None:
        self.line(text)

    def pause(self, text: str) -> None:
        super().pause(text)
        self._timed = (text, self.clock())
        self.line(f"{_within(text)} ...")

    def resume(self, text: str, seconds: float) -> None:
        super().resume(text, seconds)
        self.line(f"{_within(text)} done ({duration(seconds)})")

    # --- lines and the heartbeat -------------------------------------------------------------

    def line(self, text: str) -> None:
        """Write one line now (and restart the heartbeat's count)."""
        if self.stream is None:
            return
        with self._write_lock:
            self.last_line = self.clock()
            try:
                self.stream.write(f"{self.prefix}{text}\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed (a pipe reader gone): keep working
                pass

    def heartbeat_text(self) -> str:
        """What the command is doing now: the innermost task's path and status."""
        now = self.clock()
        if self.paused and timing():
            text, since = self._timed
            return f"{_within(text)} ({duration(now - since)})"
        tasks = active()
        if tasks:
            return f"{tasks[-1].path} {status(tasks[-1])}"
        return f"working ({duration(now - self.started)})"

    def beat(self, now: float | None = None) -> bool:
        """Write a heartbeat line if ``interval`` seconds passed since the last line."""
        now = self.clock() if now is None else now
        if self.stream is None or now - self.last_line < self.interval:
            return False
        self.line(self.heartbeat_text())
        return True

    def _beat_loop(self) -> None:
        while True:
            wait = max(0.01, self.last_line + self.interval - self.clock())
            if self._stop.wait(wait):
                return
            self.beat()
