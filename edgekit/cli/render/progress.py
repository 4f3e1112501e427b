"""Where the library's progress (:mod:`edgekit.progress`) is shown for a command.

* On a terminal (stderr is a TTY, not CI): a live rich display on stderr, one row per running
  step (description, bar, done/total, elapsed, steady ETA, status), a line kept per finished
  top-level step. It is redrawn by a thread of its own four times a second, except in a timed
  section (a latency measurement): then that thread sleeps, the display shows a static
  "timing 200 ticks ..." row and is only redrawn after (or by the working thread between two
  measured units).
* In CI, or when stderr is not a terminal: plain lines and a heartbeat on stderr
  (:class:`edgekit.progress.lines.LineSink`).
* ``--quiet``: nothing.

Nothing goes to stdout, which may carry ``--json -``.

In a command::

    with shown("quantize", quiet):
        result = run_quantize(...)
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any

from rich.markup import escape
from rich.progress import ProgressColumn
from rich.text import Text

from edgekit import progress
from edgekit.cli.env import in_ci
from edgekit.progress import Sink, Task
from edgekit.progress.lines import LineSink, duration, stderr_stream

HEARTBEAT_S = 30.0  # CI: at least one line this often (CircleCI kills a job silent for 10 min)


def make_sink(
    command: str, quiet: bool = False, stream: IO[str] | None = None, interval: float = HEARTBEAT_S
) -> Sink | None:
    """The sink for ``command``: None when quiet, lines in CI or when ``stream`` (default: a
    copy of stderr) is not a terminal, else the live display."""
    if quiet or os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return None
    out = stream or stderr_stream()
    if in_ci() or not _isatty(out):
        return LineSink(command, stream=out, interval=interval)
    return LiveSink(command, stream=out)


@contextmanager
def shown(command: str, quiet: bool | None = None) -> Iterator[Sink | None]:
    """Show the library's progress for the ``with`` block (see the module doc); ``quiet``
    defaults to the command's ``--quiet``."""
    if quiet is None:
        from edgekit.cli.guard import quiet as command_quiet

        quiet = command_quiet()
    out = None if quiet else stderr_stream()
    sink = make_sink(command, quiet, out)
    try:
        if sink is None:
            with progress.use(None):
                yield None
            return
        assert isinstance(sink, (LineSink, LiveSink))
        with sink, progress.use(sink):
            yield sink
    finally:
        if out is not None and out is not sys.stderr:
            out.close()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LiveSink(Sink):
    """A rich live display on ``stream`` (a terminal), redrawn by its own thread except while
    paused. Use as a context manager."""

    def __init__(
        self, command: str, *, stream: IO[str], quiet: bool = False, refresh: float = 0.25
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.command, self.quiet, self.refresh_s = command, quiet, refresh
        self.console = Console(file=stream, highlight=False)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=28),
            _TaskColumn("counts"),
            _TaskColumn("times"),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            auto_refresh=False,  # our thread redraws, and sleeps in timed sections
            transient=True,
            redirect_stdout=False,  # stdout may carry --json -
            redirect_stderr=True,
        )
        self.rows: dict[int, Any] = {}
        self._draw = threading.Lock()
        self._running = threading.Event()  # clear: paused, the thread waits
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LiveSink:
        if self.quiet:
            return self
        self.bar.start()
        self._running.set()
        self._thread = threading.Thread(target=self._redraw_loop, name="edgekit-progress")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._running.set()
        self._thread.join()
        with self._draw:
            self.bar.stop()
        if self.console.file is not None:
            self.console.file.flush()

    # --- the sink ----------------------------------------------------------------------------

    def start(self, task: Task) -> None:
        if self.quiet:
            return
        with self._draw:
            self.rows[id(task)] = self.bar.add_task(
                "  " * task.depth + task.description, total=task.total, info="", ek=task
            )
        self._show_now()

    def update(self, task: Task) -> None:
        row = self.rows.get(id(task))
        if row is None:
            return
        with self._draw:
            self.bar.update(row, total=task.total, completed=task.completed, info=task.info)
        if self.paused:  # no thread draws now: the working thread does, between two units
            self._show_now()

    def end(self, task: Task) -> None:
        row = self.rows.pop(id(task), None)
        if row is None:
            return
        with self._draw:
            self.bar.remove_task(row)
            if task.depth == 0:  # finished top-level steps stay on screen
                self.bar.refresh()  # not redrawn with the finished row above the new line
                mark = "[red]x[/red]" if task.failed else "[green]\u2713[/green]"
                counts = f" {task.counts}" if task.counts else ""
                info = f"  {task.info}" if task.info else ""
                self.console.print(
                    f"{mark} {escape(task.description)}{counts} [dim]({duration(task.elapsed)})"
                    f"{escape(info)}[/dim]"
                )
        self._show_now()

    def note(self, text: str) -> None:
        if self.quiet:
            return
        with self._draw:
            self.console.print(f"[dim]{escape(text)}[/dim]")
        self._show_now()

    def pause(self, text: str) -> None:
        with self._draw:  # the thread is not drawing once this returns
            super().pause(text)
            self._running.clear()
            if not self.quiet:
                self.rows[-1] = self.bar.add_task(f"{text} ...", total=None, info="", ek=None)
        self._show_now()

    def resume(self, text: str, seconds: float) -> None:
        with self._draw:
            row = self.rows.pop(-1, None)
            if row is not None:
                self.bar.remove_task(row)
            super().resume(text, seconds)
            self._running.set()

    # --- drawing -----------------------------------------------------------------------------

    def _show_now(self) -> None:
        if self._thread is None:
            return
        with self._draw:
            self.bar.refresh()

    def _redraw_loop(self) -> None:
        while not self._stop.is_set():
            self._running.wait()  # paused: sleep until the timed section ends
            with self._draw:
                if not self.paused and not self._stop.is_set():
                    self.bar.refresh()
            self._stop.wait(self.refresh_s)


class _TaskColumn(ProgressColumn):
    """``counts`` (12/32) or ``times`` (elapsed, steady ETA) of the edgekit task of a row."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def render(self, task: Any) -> Text:
        ek: Task | None = task.fields.get("ek")
        if ek is None:
            return Text("")
        if self.what == "counts":
            return Text(ek.counts)
        eta = ek.eta()
        shown = duration(ek.elapsed) + (f"  ETA {duration(eta)}" if eta is not None else "")
        return Text(shown, style="dim")
