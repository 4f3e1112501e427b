"""Hostile operating system: destinations that cannot be written, full disks, signals, a second
writer. Each is one line and exit 2 (130/143 for signals), found before the job runs where it
can be, and leaves nothing behind.

Root writes through permission bits, so "read-only" here means what root cannot write either:
``/proc``, ``/sys``, a parent that is a regular file, ``/dev/full``, and (where this process may
mount) a read-only or a tiny tmpfs; those cases skip with a reason when mounting is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, error_lines
from tests.hostile import QUICK_BENCH, Hostile, Workspace, check_clean_error

CALIB = ROOT / "calib_data"
QUICK_DISTILL = (
    "--data",
    CALIB / "humanoid-tiny.npz",
    "--steps",
    "3",
    "--width",
    "0.5",
    "--latency-ticks",
    "0",
    "--checkpoint-every",
    "0",
)
QUICK_RECIPE = """\
schema_version: 1
name: t
model: zoo:humanoid:tiny
data: synthetic
stages:
  - stage: export
    format: onnx
  - stage: bench
    ticks: 2
    warmup: 0
targets:
  cpu: {budget_ms: 60000}
"""


def _file(w: Workspace) -> None:
    (w.dir / "f.txt").write_text("a file, not a folder\n")


def _recipe(w: Workspace) -> None:
    (w.dir / "r.yaml").write_text(QUICK_RECIPE)


def _mkdir(name: str):
    return lambda w: (w.dir / name).mkdir()


def _quantize(w: Workspace, out: object, *more: object) -> list[object]:
    return ["quantize", w.artifact, "--calib", w.calib, "--latency-ticks", "0", "--out", out, *more]


def _distill(w: Workspace) -> list[object]:
    return ["distill", "zoo:humanoid:tiny", *QUICK_DISTILL, "--out", w.dir / "s"]


CASES = [
    Hostile(
        "export-out-parent-is-a-file",
        bad=lambda w: ["export", "zoo:humanoid:tiny", "--out", w.dir / "f.txt" / "art"],
        fixed=lambda w: ["export", "zoo:humanoid:tiny", "--out", w.dir / "art"],
        needles=("--out", "f.txt is a file, not a folder"),
        setup=_file,
    ),
    Hostile(
        "export-out-under-proc",
        bad=lambda w: ["export", "zoo:humanoid:tiny", "--out", "/proc/edgekit-art"],
        fixed=lambda w: ["export", "zoo:humanoid:tiny", "--out", w.dir / "art"],
        needles=("--out /proc/edgekit-art", "cannot write in /proc"),
    ),
    Hostile(
        "quantize-out-under-sys",
        bad=lambda w: _quantize(w, "/sys/edgekit-q"),
        fixed=lambda w: _quantize(w, w.dir / "q"),
        needles=("--out /sys/edgekit-q", "cannot write in /sys"),
    ),
    Hostile(
        "quantize-json-dev-full",  # the artifact it reports on goes too: not left as if done
        bad=lambda w: _quantize(w, w.dir / "q", "--json", "/dev/full"),
        fixed=None,  # quantize-out-under-sys runs the fixed quantize once already
        needles=("--json /dev/full", "No space left on device", "removed the artifact"),
    ),
    Hostile(
        "quantize-json-parent-is-a-file",
        bad=lambda w: _quantize(w, w.dir / "q", "--json", w.dir / "f.txt" / "q.json"),
        fixed=None,  # the same fix as export-out-parent-is-a-file; one quantize run is enough
        needles=("--json", "f.txt is a file, not a folder"),
        setup=_file,
    ),
    Hostile(
        "distill-out-under-proc",
        bad=lambda w: ["distill", "zoo:humanoid:tiny", *QUICK_DISTILL, "--out", "/proc/x/s"],
        fixed=_distill,
        needles=("--out /proc/x/s", "cannot create folder /proc/x"),
    ),
    Hostile(
        "distill-json-missing-folder",
        bad=lambda w: [*_distill(w), "--json", w.dir / "reports" / "s.json"],
        fixed=None,  # the fix (mkdir) is the same as bench-json-missing-folder's
        needles=("--json", "folder", "reports does not exist; create it first"),
    ),
    Hostile(
        "bench-json-missing-folder",
        bad=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", w.dir / "reports" / "b.json"],
        fixed=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", w.dir / "reports" / "b.json"],
        needles=("--json", "reports does not exist"),
        fix=_mkdir("reports"),
    ),
    Hostile(
        "bench-json-dev-full",
        bad=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", "/dev/full"],
        fixed=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", "/dev/null"],
        needles=("--json /dev/full", "No space left on device"),
    ),
    Hostile(
        "bench-json-is-a-folder",
        bad=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", w.dir / "reports"],
        fixed=lambda w: ["bench", w.artifact, *QUICK_BENCH, "--json", w.dir / "reports/b.json"],
        needles=("--json", "is a folder; give a file name"),
        setup=_mkdir("reports"),
    ),
    Hostile(
        "eval-json-under-sys",
        bad=lambda w: ["eval", "zoo:humanoid:reacher", "-n", "1", "--json", "/sys/e.json"],
        fixed=lambda w: ["eval", "zoo:humanoid:reacher", "-n", "1", "--json", w.dir / "e.json"],
        needles=("--json /sys/e.json", "cannot write in /sys"),
    ),
    Hostile(
        "run-out-parent-is-a-file",
        bad=lambda w: ["run", w.dir / "r.yaml", "-q", "--out", w.dir / "f.txt" / "run"],
        fixed=lambda w: ["run", w.dir / "r.yaml", "-q", "--out", w.dir / "run"],
        needles=("--out", "f.txt is a file, not a folder"),
        setup=lambda w: (_file(w), _recipe(w)),
    ),
    Hostile(
        "run-json-under-proc",
        bad=lambda w: ["run", w.dir / "r.yaml", "--out", w.dir / "run", "--json", "/proc/r.json"],
        fixed=None,  # run-out-parent-is-a-file runs the recipe once already
        needles=("--json /proc/r.json", "cannot write in /proc"),
        setup=_recipe,
    ),
    Hostile(
        "models-json-dev-full",
        bad=lambda w: ["models", "--kind", "humanoid", "--json", "/dev/full"],
        fixed=lambda w: ["models", "--kind", "humanoid", "--json", w.dir / "m.json"],
        needles=("--json /dev/full", "No space left on device"),
    ),
    Hostile(
        "targets-json-parent-is-a-file",
        bad=lambda w: ["targets", "--json", w.dir / "f.txt" / "t.json"],
        fixed=lambda w: ["targets", "--json", w.dir / "t.json"],
        needles=("--json", "f.txt is a file, not a folder"),
        setup=_file,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_os(case, hostile):
    hostile(case)


# --- found before the work ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "zoo:humanoid:tiny", "--out", "/proc/edgekit-art"],
        ["quantize", "zoo:humanoid:tiny", "--calib", "synthetic", "--out", "/sys/q"],
        ["quantize", "zoo:humanoid:tiny", "--calib", "synthetic", "--out", "Q", "--json", "F/q"],
        ["distill", "zoo:humanoid:tiny", "--data", "synthetic", "--out", "F/s"],
        ["distill", "zoo:humanoid:tiny", "--data", "synthetic", "--out", "S", "--json", "/sys/j"],
        ["bench", "zoo:humanoid:tiny", "--json", "F/b.json"],
        ["eval", "zoo:humanoid:reacher", "--json", "no/such/e.json"],
    ],
    ids=lambda a: " ".join(a[:1] + a[-2:-1]),
)
def test_unwritable_destination_fails_before_the_model_loads(argv, cli, tmp_path, monkeypatch):
    import edgekit.cli.options

    def loaded(*args: object) -> None:
        pytest.fail("the model was loaded: the destination was not checked first")

    monkeypatch.setattr(edgekit.cli.options, "load_source", loaded)
    (tmp_path / "F").write_text("")
    subst = {"F/q": tmp_path / "F/q", "F/s": tmp_path / "F/s", "F/b.json": tmp_path / "F/b.json"}
    subst |= {"Q": tmp_path / "Q", "S": tmp_path / "S", "no/such/e.json": tmp_path / "no/e.json"}
    r = cli(*[subst.get(a, a) for a in argv])
    check_clean_error(r.code, r.err, 2, ())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["F"]  # no folder, lock or staging


def test_run_destination_fails_before_the_run(cli, tmp_path, monkeypatch):
    import edgekit.run

    monkeypatch.setattr(edgekit.run, "run", lambda *a, **k: pytest.fail("the run started"))
    (tmp_path / "r.yaml").write_text(QUICK_RECIPE)
    r = cli("run", tmp_path / "r.yaml", "--out", "/proc/edgekit-run")
    check_clean_error(r.code, r.err, 2, ("--out /proc/edgekit-run",))


# --- read-only and full file systems (tmpfs mounts; root only) ----------------------------------


@pytest.fixture
def mount(tmp_path) -> Iterator:
    """``mount(options)`` -> a fresh tmpfs folder; unmounted afterwards. Skips if refused."""
    points: list[Path] = []

    def make(options: str) -> Path:
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        points.append(point)
        return point

    yield make
    for p in points:
        subprocess.run(["umount", str(p)], check=False)


def test_read_only_file_system(cli, mount, tmp_path):
    ro = mount("size=1m,ro")
    r = cli("distill", "zoo:humanoid:tiny", *QUICK_DISTILL, "--out", ro / "s")
    check_clean_error(r.code, r.err, 2, (f"--out {ro / 's'}", "Read-only file system"))
    r = cli("bench", "zoo:humanoid:tiny", *QUICK_BENCH, "--json", ro / "b.json")
    check_clean_error(r.code, r.err, 2, (f"--json {ro / 'b.json'}", "Read-only file system"))


def test_disk_full_while_writing_is_exit_2_and_leaves_nothing(cli, mount):
    # 16 KiB: the lock file fits (the check before the work passes), the ONNX file does not
    full = mount("size=16k")
    r = cli("export", "zoo:humanoid:tiny", "--out", full / "art")
    check_clean_error(r.code, r.err, 2, (f"--out {full / 'art'}", "No space left on device"))
    assert list(full.iterdir()) == []


def test_run_on_a_full_disk_names_the_file_and_leaves_no_run_folder(cli, mount, tmp_path):
    # 200 KiB: the export stage fits, the run's reports and plots do not
    full = mount("size=200k")
    (tmp_path / "r.yaml").write_text(QUICK_RECIPE)
    r = cli("run", tmp_path / "r.yaml", "--out", full / "run")
    check_clean_error(r.code, r.err, 2, (str(full / "run") + "/", "No space left on device"))
    assert list(full.iterdir()) == []  # the run made the folder: it goes again


def test_full_disk_is_found_before_the_work(cli, mount, monkeypatch):
    import edgekit.cli.options

    full = mount("size=4k")
    (full / "filler").write_bytes(b"x" * 4096)
    monkeypatch.setattr(
        edgekit.cli.options, "load_source", lambda *a: pytest.fail("loaded the model")
    )
    r = cli("quantize", "zoo:humanoid:tiny", "--calib", "synthetic", "--out", full / "q")
    check_clean_error(r.code, r.err, 2, (f"--out {full / 'q'}", "No space left on device"))
    assert [p.name for p in full.iterdir()] == ["filler"]


# --- signals and a second writer (real processes) ----------------------------------------------


def _start(argv: list[object], tmp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true", "TMPDIR": str(tmp)}
    return subprocess.Popen(
        [sys.executable, "-m", "edgekit", *map(str, argv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"{path} never appeared; stderr: {proc.communicate()[1]}")
        time.sleep(0.05)


LONG_DISTILL = ["distill", "zoo:vla:tiny", "--width", "0.5", "--data", CALIB / "vla-tiny.npz"]
LONG_DISTILL += ["--steps", "100000", "--checkpoint-every", "0"]


@pytest.mark.parametrize(
    ("sig", "code", "line"),
    [(signal.SIGTERM, 143, "error: terminated"), (signal.SIGINT, 130, "error: interrupted")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signal_cleans_up_and_a_second_writer_is_refused(sig, code, line, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "runs" / "student"  # "runs" is created for the job and removed with it
    first = _start([*LONG_DISTILL, "--out", out], tmp)
    try:
        _wait_for(out.parent / ".student.lock", first)
        if sig == signal.SIGTERM:  # the lock, checked by a second real process (once is enough)
            second = _start(["export", "zoo:humanoid:tiny", "--out", out], tmp)
            _, err = second.communicate(timeout=60)
            check_clean_error(second.returncode, err, 2, (f"--out {out}", f"(pid {first.pid})"))
            assert "being written by another edgekit process" in err
        time.sleep(1.0)  # into the job proper, past the imports
        first.send_signal(sig)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == code, err
    assert error_lines(err) == [line], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no out, lock, staging
    ours = [p.name for p in tmp.iterdir() if p.name.startswith(("edgekit", "tmp"))]
    assert not ours, f"temporary folders left behind: {ours}"


def test_force_onto_a_symlinked_out_writes_where_it_points(cli, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    for force in ((), ("--force",)):
        r = cli("export", "zoo:humanoid:tiny", "--out", tmp_path / "link", *force)
        assert r.code == 0, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]  # no .old-PID link
    assert (tmp_path / "link").is_symlink() and (target / "edgekit.json").is_file()


def test_a_killed_commands_staging_folder_is_swept_by_the_next_success(cli, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "work" / "art"
    out.parent.mkdir()
    killed = _start(["export", "zoo:vla:tiny", "--out", out], tmp)
    try:
        end = time.monotonic() + 120
        while not list(out.parent.glob(".art.tmp-*")):
            if killed.poll() is not None or time.monotonic() > end:
                pytest.fail(f"no staging folder appeared; stderr: {killed.communicate()[1]}")
            time.sleep(0.02)
    finally:
        killed.kill()  # SIGKILL: no cleanup runs
        killed.communicate()
    assert list(out.parent.glob(".art.tmp-*")), "the killed export left nothing to sweep"
    r = cli("export", "zoo:humanoid:tiny", "--out", out, "--force")
    assert r.code == 0, r.err
    assert sorted(p.name for p in out.parent.iterdir()) == ["art"]


SLOW_SHUTDOWN = """\
import atexit, sys, time

# the interpreter's own shutdown after the verdict (torch and onnxruntime tear down for a while)
atexit.register(lambda: (print("shutting down", flush=True), time.sleep(60)))
sys.argv = ["edgekit", *sys.argv[1:]]
from edgekit.cli import entry

entry()
"""


def test_a_sigterm_after_the_verdict_still_exits_143_with_its_line(tmp_path, humanoid_artifact):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true", "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SHUTDOWN, "bench", humanoid_artifact, *QUICK_BENCH],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # the verdict, then the shutdown starts
            lines.append(line)
            if line.startswith("shutting down"):
                break
        assert any(ln.startswith("verdict:") for ln in lines), lines
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    assert error_lines(err) == ["error: terminated"], err
