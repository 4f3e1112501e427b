"""Progress: the library API (silent without a sink), the CI heartbeat lines, the live display
paused while ticks are timed, the steady ETA, native QNN output kept off the user's streams.

Nothing here asserts on how fast edgekit is: only on what is shown, where, and in which state.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit import progress
from edgekit.cli.env import in_ci
from edgekit.progress import Sink, SteadyRate, Task
from edgekit.progress.lines import LineSink, duration

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(Sink):
    """A sink that keeps every call, and the paused state each one saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def start(self, task: Task) -> None:
        self.calls.append(("start", task.path))

    def update(self, task: Task) -> None:
        self.calls.append(("update", f"{task.path} {task.counts}"))

    def end(self, task: Task) -> None:
        self.calls.append(("end", task.path))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def pause(self, text: str) -> None:
        super().pause(text)
        self.calls.append(("pause", text))

    def resume(self, text: str, seconds: float) -> None:
        super().resume(text, seconds)
        self.calls.append(("resume", text))


# --- the library API -----------------------------------------------------------------------


def test_library_is_silent_without_a_sink(capfd, humanoid_artifact):
    from edgekit.bench import BenchConfig, bench

    assert progress.sink() is None
    with progress.task("step", total=3) as t:
        t.advance()
        progress.note("a note")
        with progress.timed("timing"):
            t.advance(2)
    assert t.completed == 3 and not t.failed
    bench(str(humanoid_artifact), BenchConfig(ticks=3, warmup=2))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_tasks_nest_report_and_end_on_errors():
    rec = Recorder()
    with progress.use(rec), progress.task("outer") as outer:
        with progress.task("inner", total=2) as inner:
            inner.advance()
            assert [t.description for t in progress.active()] == ["outer", "inner"]
        with pytest.raises(ValueError), progress.task("broken") as broken:
            raise ValueError("x")
        outer.update(info="ok")
    assert progress.sink() is None and progress.active() == []
    assert broken.failed and not inner.failed
    assert rec.calls[:4] == [
        ("start", "outer"),
        ("start", "outer: inner"),
        ("update", "outer: inner 1/2"),
        ("end", "outer: inner"),
    ]
    assert ("end", "outer: broken") in rec.calls and rec.calls[-1] == ("end", "outer")


def test_nested_timed_sections_pause_once():
    rec = Recorder()
    with progress.use(rec), progress.timed("outer timing"):
        assert rec.paused and progress.timing()
        with progress.timed("inner timing"):
            assert rec.paused
        assert rec.paused  # the inner one ending does not resume the outer one
    assert not rec.paused and not progress.timing()
    assert [c for c in rec.calls if c[0] in ("pause", "resume")] == [
        ("pause", "outer timing"),
        ("resume", "outer timing"),
    ]


@pytest.mark.parametrize(
    ("value", "ci"),
    [("", False), ("0", False), ("false", False), ("False", False), ("no", False),
     ("true", True), ("1", True), ("yes", True)],
)  # fmt: skip
def test_in_ci_reads_a_boolean(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


# --- heartbeat lines (CI) -------------------------------------------------------------------


def test_heartbeat_after_interval_with_a_fake_clock():
    clock, out = FakeClock(), io.StringIO()
    sink = LineSink("quantize", stream=out, interval=30.0, clock=clock)
    with progress.use(sink), progress.task("calibrating denoiser", total=32) as t:
        assert out.getvalue() == "[edgekit] quantize: calibrating denoiser ...\n"
        clock.now += 29
        t.advance(12)
        assert not sink.beat()  # 29 s since the last line
        clock.now += 36
        assert sink.beat()
        assert not sink.beat()  # the count restarts at each line
        clock.now += 30
        assert sink.beat()
    lines = out.getvalue().splitlines()
    assert lines[1] == "[edgekit] quantize: calibrating denoiser 12/32 (1m05s)"
    assert lines[2].startswith("[edgekit] quantize: calibrating denoiser 12/32 (1m35s")
    assert lines[-1] == "[edgekit] quantize: calibrating denoiser done 12/32 (1m35s)"
    assert [duration(s) for s in (0.42, 12.4, 65, 3725)] == ["0.4s", "12s", "1m05s", "1h02m"]


def test_heartbeat_thread_writes_at_least_every_interval():
    out = io.StringIO()
    sink = LineSink("distill", stream=out, interval=0.05)
    with sink, progress.use(sink), progress.task("training", total=100) as t:
        t.advance(3, info="loss 0.5")
        time.sleep(0.5)
    beats = [x for x in out.getvalue().splitlines() if "training 3/100" in x]
    assert len(beats) >= 3, out.getvalue()  # 0.5 s at 0.05 s: ~10 (a loaded machine: fewer)
    assert all(x.startswith("[edgekit] distill: training 3/100 (") for x in beats)
    assert beats[0].endswith("loss 0.5")


def test_heartbeat_when_no_task_runs_and_in_timed_sections():
    clock, out = FakeClock(), io.StringIO()
    sink = LineSink("bench", stream=out, interval=30.0, clock=clock)
    clock.now += 31
    assert sink.beat() and out.getvalue().endswith("working (31s)\n")
    with progress.use(sink), progress.timed("timing 200 ticks"):
        clock.now += 31
        assert sink.beat()
    assert out.getvalue().splitlines()[1:] == [
        "[edgekit] bench: timing 200 ticks ...",
        "[edgekit] bench: timing 200 ticks (31s)",
        "[edgekit] bench: timing 200 ticks done (0.0s)",
    ]


def test_lines_go_to_stderr_never_stdout(capfd):
    sink = LineSink("export")
    with sink, progress.use(sink), progress.task("exporting policy to ONNX"):
        progress.note("exported on the fly")
    out, err = capfd.readouterr()
    assert out == ""
    assert "[edgekit] export: exporting policy to ONNX ...\n" in err
    assert "[edgekit] export: exported on the fly\n" in err


def test_quiet_prints_nothing(capfd):
    from edgekit.cli.render.progress import make_sink, shown

    assert make_sink("bench", quiet=True) is None
    sink = LineSink("bench", quiet=True, interval=0.01)
    with sink, progress.use(sink), progress.task("step", total=2) as t:
        t.advance()
        time.sleep(0.05)
    with shown("bench", quiet=True):
        assert progress.sink() is None
        with progress.task("step"):
            progress.note("nothing")
    assert capfd.readouterr() == ("", "")


# --- the steady ETA ---------------------------------------------------------------------------


def _trajectory(estimate: Any, steps: list[float], first: int, last: int) -> list[tuple]:
    """(estimated, true, step seconds) left after each step in [first, last)."""
    left = np.cumsum(steps[::-1])[::-1]  # true remaining time before each step
    t, out = 0.0, []
    for i, dt in enumerate(steps):
        t += dt
        eta = estimate(i + 1, t)
        if first <= i + 1 < last:
            assert eta is not None
            out.append((eta, float(left[i + 1]), dt))
    return out


def _jumps(traj: list[tuple]) -> list[float]:
    """How far each new ETA lands from the previous one counted down (0: perfectly steady)."""
    return [abs(b[0] - (a[0] - b[2])) for a, b in itertools.pairwise(traj)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eta_is_steady_on_a_noisy_rate(seed):
    # a distillation: 2 s steps +-20 %, a 20 s held-out evaluation every 15 steps, a slow
    # first step (compilation); the user saw a 30 s window's ETA go 9:02 -> 6:10 -> 4:31 -> 6:59
    rng = np.random.default_rng(seed)
    total = 300
    steps = list(rng.uniform(1.6, 2.4, total))
    for i in range(14, total, 15):
        steps[i] += 20.0
    steps[0] += 25.0
    rate = SteadyRate()
    rate.observe(0, 0.0)

    def steady(done: int, now: float) -> float | None:
        rate.observe(done, now)
        return rate.eta(done, total, now)

    history: list[tuple[int, float]] = []

    def windowed(done: int, now: float) -> float:  # a progress bar's usual: the last 30 s
        history.append((done, now))
        old = next(h for h in history if now - h[1] <= 30.0)
        return (total - done) * (now - old[1]) / max(done - old[0], 1)

    ours = _trajectory(steady, steps, 30, total - 30)
    naive = _trajectory(windowed, steps, 30, total - 30)
    assert max(abs(e - true) / true for e, true, _ in ours) < 0.25
    assert max(j / b[1] for j, b in zip(_jumps(ours), ours[1:], strict=True)) < 0.3
    assert sum(_jumps(naive)) > 5 * sum(_jumps(ours))
    assert max(abs(e - true) / true for e, true, _ in naive) > 0.5  # the jumpy one: way off


def test_eta_counts_down_between_updates_and_follows_a_lasting_change():
    rate = SteadyRate(skip=0, min_tau=5.0)
    now = 0.0
    rate.observe(0, now)
    for done in range(1, 101):  # 1 unit/s
        now += 1.0
        rate.observe(done, now)
    eta = rate.eta(100, 300, now)
    assert eta == pytest.approx(200, rel=0.01)
    assert rate.eta(100, 300, now + 10) == pytest.approx(190, rel=0.01)
    for done in range(101, 301):  # twice as fast from now on
        now += 0.5
        rate.observe(done, now)
    assert rate.rate == pytest.approx(2.0, rel=0.25)


def test_no_eta_before_the_skipped_updates():
    rate = SteadyRate(skip=2)
    rate.observe(0, 0.0)
    rate.observe(1, 30.0)  # compile, caches...
    rate.observe(2, 31.0)
    assert rate.rate is None and rate.eta(2, 10, 31.0) is None
    rate.observe(3, 32.0)
    assert rate.rate == pytest.approx(1.0)


# --- timed ticks: nothing redraws -------------------------------------------------------------


def test_bench_times_its_ticks_with_the_sink_paused(monkeypatch, humanoid_artifact):
    from edgekit.bench import BenchConfig, bench
    from edgekit.runtimes import OrtRuntime

    rec = Recorder()
    states: list[bool] = []
    original = OrtRuntime.run

    def run(self: Any, network: str, feeds: Any) -> Any:
        states.append(rec.paused and progress.timing())
        return original(self, network, feeds)

    monkeypatch.setattr(OrtRuntime, "run", run)
    with progress.use(rec):
        bench(str(humanoid_artifact), BenchConfig(ticks=5, warmup=3))
    # one call per tick (policy x1): the first-tick check and 3 warm-up ticks run unpaused,
    # the 5 timed ticks paused
    assert states == [False] * 4 + [True] * 5
    assert ("pause", "timing 5 ticks") in rec.calls and not rec.paused
    starts = [c[1] for c in rec.calls if c[0] == "start"]
    assert "warming up" in starts and any(s.startswith("loading ") for s in starts)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_display_does_not_redraw_while_paused():
    from edgekit.cli.render.progress import LiveSink

    out = _Tty()
    with LiveSink("bench", stream=out, refresh=0.01) as sink, progress.use(sink):
        with progress.task("warming up", total=4) as t:
            t.advance()
            time.sleep(0.1)
        assert len(out.getvalue()) > 0  # the thread redraws (elapsed time moves)
        with progress.timed("timing 200 ticks"):
            assert sink.paused and "timing 200 ticks ..." in out.getvalue()
            before = len(out.getvalue())
            time.sleep(0.2)  # 20 redraw periods
            assert len(out.getvalue()) == before  # nothing drawn while ticks are timed
        assert not sink.paused
    assert "\u2713 warming up 1/4" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())


# --- native output (QNN) ----------------------------------------------------------------------


def test_native_output_is_captured_and_shown_with_debug(capfd):
    from edgekit.errors import set_debug
    from edgekit.runtimes import htp

    line = b"# LIBNATIVE: No alternate configuration present in libnative_tls.conf\n"
    with htp.native_output_captured() as got:
        os.write(2, line)
        os.write(1, b"on fd 1\n")
    assert capfd.readouterr() == ("", "")
    assert "LIBNATIVE" in got[0] and "on fd 1" in got[0] and got[0] in htp.NATIVE_LOG
    set_debug(True)
    try:
        with htp.native_output_captured():
            os.write(2, line)
    finally:
        set_debug(False)
    out, err = capfd.readouterr()
    assert out == "" and "# LIBNATIVE" in err


# --- the CLI ----------------------------------------------------------------------------------


def _edgekit(*args: str, ci: str = "true") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "edgekit", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_ci_prints_step_lines_on_stderr_none_on_stdout(humanoid_artifact, tmp_path):
    r = _edgekit(
        "bench", str(humanoid_artifact), "--ticks", "5", "--warmup", "2",
        "--json", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["report"] == "edgekit.bench"
    assert "[edgekit]" not in r.stdout and "verdict:" in r.stdout
    lines = r.stderr.splitlines()
    for expected in (
        f"[edgekit] bench: loading {humanoid_artifact} ...",
        "[edgekit] bench: warming up ...",
        "[edgekit] bench: timing 5 ticks ...",
    ):
        assert expected in lines, r.stderr
    assert any(x.startswith("[edgekit] bench: timing 5 ticks done (") for x in lines), r.stderr


def test_quantize_in_ci_reports_calibration(tmp_path):
    r = _edgekit(
        "quantize", "zoo:humanoid:tiny", "--calib", "calib_data/humanoid-tiny.npz",
        "--out", str(tmp_path / "q"), "--latency-ticks", "0",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "[edgekit]" not in r.stdout
    for step in ("exporting policy to ONNX", "calibrating policy", "fidelity vs FP32"):
        assert any(x.startswith(f"[edgekit] quantize: {step}") for x in r.stderr.splitlines()), (
            r.stderr
        )
    assert any(x.startswith("[edgekit] quantize: calibrating policy done ") for x in
               r.stderr.splitlines())  # fmt: skip
