"""Progress of long library work, reported to whoever shows it: silent unless a sink is set.

The library reports every long step; the caller decides what, if anything, is shown::

    from edgekit import progress

    with progress.task("calibrating encoder", total=len(batches)) as t:
        for batch in batches:
            ...
            t.advance()
    progress.note("exported on the fly")
    with progress.timed("timing 200 ticks"):  # a latency measurement: nothing redraws now
        ...

With no sink (the default, and what a Python user of the library gets) every call is a cheap
no-op. The CLI sets one with :func:`use` (``edgekit.cli.render.progress``): a live display on a
terminal, heartbeat lines on stderr in CI (:class:`edgekit.progress.lines.LineSink`).

Timed sections: inside :func:`timed` sinks are *paused*: no thread redraws anything, so a
latency measurement never shares the CPU with a progress display. Updates made inside a timed
section (between two measured units) are shown synchronously by the caller's thread, or not at
all.

This module imports neither torch nor rich: the tick core (``edgekit.loop``) reports through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from edgekit.progress.rate import SteadyRate

__all__ = ["Sink", "SteadyRate", "Task", "active", "note", "sink", "task", "timed", "timing", "use"]

Clock = Callable[[], float]


class Task:
    """One step of work: ``description``, ``completed`` of ``total`` (None: unknown), ``info``
    (a short status such as the loss), elapsed time and a steady ETA (:class:`SteadyRate`)."""

    def __init__(
        self,
        description: str,
        total: int | None,
        owner: Sink | None,
        parent: Task | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.description, self.total, self.parent = description, total, parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.completed = 0
        self.info = ""
        self.clock: Clock = clock or getattr(owner, "clock", None) or time.monotonic
        self.started = self.clock()
        self.ended: float | None = None
        self.failed = False
        self.rate = SteadyRate()
        self._owner = owner
        self.rate.observe(0, self.started)

    def advance(self, n: int = 1, info: str | None = None) -> None:
        """``n`` more units done (and the status text, if given)."""
        self.update(completed=self.completed + n, info=info)

    def update(
        self, completed: int | None = None, total: int | None = None, info: str | None = None
    ) -> None:
        if total is not None:
            self.total = total
        if completed is not None:
            self.completed = completed if self.total is None else min(completed, self.total)
            self.rate.observe(self.completed, self.clock())
        if info is not None:
            self.info = info
        if self._owner is not None:
            self._owner.update(self)

    @property
    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def eta(self) -> float | None:
        """Seconds left, from the smoothed rate, counting down between updates (None: not
        known yet, or no total)."""
        if self.total is None or self.ended is not None:
            return None
        return self.rate.eta(self.completed, self.total, self.clock())

    @property
    def path(self) -> str:
        """The descriptions from the outermost task down to this one, joined by ": "."""
        return (
            self.description if self.parent is None else f"{self.parent.path}: {self.description}"
        )

    @property
    def counts(self) -> str:
        """``12/32``, or ``12`` with no total, or "" before the first unit of an open count."""
        if self.total is not None:
            return f"{self.completed}/{self.total}"
        return str(self.completed) if self.completed else ""


class Sink:
    """Where progress goes. Every method is a no-op here; a sink overrides what it shows.
    Tasks read the time from the sink's ``clock`` attribute when it has one (tests).

    Methods are called by the thread doing the work; a sink that draws from a thread of its
    own must not draw while :attr:`paused` (a timed section runs)."""

    paused = False

    def start(self, task: Task) -> None: ...
    def update(self, task: Task) -> None: ...
    def end(self, task: Task) -> None: ...
    def note(self, text: str) -> None: ...

    def pause(self, text: str) -> None:
        """A timed section starts (``text``: what is timed, e.g. "timing 200 ticks")."""
        self.paused = True

    def resume(self, text: str, seconds: float) -> None:
        """The timed section ended after ``seconds``."""
        self.paused = False


_lock = threading.Lock()
_state: dict[str, Sink | None] = {"sink": None}
_active: list[Task] = []
_timing: list[str] = []


def sink() -> Sink | None:
    """The sink progress goes to now (None: the library is silent)."""
    return _state["sink"]


@contextmanager
def use(new: Sink | None) -> Iterator[Sink | None]:
    """Send progress to ``new`` (None: silence) for the ``with`` block; the previous sink after."""
    with _lock:
        previous = _state["sink"]
        _state["sink"] = new
    try:
        yield new
    finally:
        with _lock:
            _state["sink"] = previous


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[Task]:
    """A step of work for the ``with`` block; ``advance()`` / ``update()`` report within it."""
    owner = _state["sink"]
    with _lock:
        t = Task(description, total, owner, _active[-1] if _active else None)
        _active.append(t)
    if owner is not None:
        owner.start(t)
    try:
        yield t
    except BaseException:
        t.failed = True
        raise
    finally:
        t.ended = t.clock()
        with _lock:
            if t in _active:
                _active.remove(t)
        if owner is not None:
            owner.end(t)


def note(text: str) -> None:
    """One line of news (a fallback taken, an export made on the fly...)."""
    owner = _state["sink"]
    if owner is not None:
        owner.note(text)


@contextmanager
def timed(text: str) -> Iterator[None]:
    """A latency measurement: the sink is paused (no redrawing thread) for the block.

    Nested timed sections pause once, for the outermost."""
    owner = _state["sink"]
    outer = not _timing
    _timing.append(text)
    t0 = time.monotonic()
    if owner is not None and outer:
        owner.pause(text)
    try:
        yield
    finally:
        _timing.pop()
        if owner is not None and outer:
            owner.resume(text, time.monotonic() - t0)


def timing() -> bool:
    """Whether a timed section is running (sinks are paused)."""
    return bool(_timing)


def active() -> list[Task]:
    """The tasks running now, outermost first."""
    with _lock:
        return list(_active)
