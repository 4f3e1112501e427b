"""Shared test helpers: run the CLI the way CI does, and catch files left behind."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def error_lines(stderr: str) -> list[str]:
    """stderr without the progress lines a CI-mode run writes (``[edgekit] ...``)."""
    return [x for x in stderr.strip().splitlines() if not x.startswith("[edgekit] ")]


@dataclass
class CliResult:
    code: int
    out: str
    err: str  # stderr without the progress lines (``[edgekit] ...``, CI mode): errors, warnings
    progress: str = ""  # the progress lines


@pytest.fixture
def cli(capsys, monkeypatch):
    """Call ``edgekit.cli.main`` in-process with argv; return exit code, stdout, stderr."""
    from edgekit.cli import _state, main
    from edgekit.cli.env import ENV_DEFAULTS

    monkeypatch.setenv("CI", "true")
    for name in ("FORCE_COLOR", "NO_COLOR", *ENV_DEFAULTS):  # the caller's shell has no say
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> CliResult:
        _state["debug"] = False
        monkeypatch.setattr(sys, "argv", ["edgekit", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = int(e.code or 0)
        captured = capsys.readouterr()
        lines = captured.err.splitlines(keepends=True)
        shown = "".join(x for x in lines if x.startswith("[edgekit] "))
        err = "".join(x for x in lines if not x.startswith("[edgekit] "))
        return CliResult(code, captured.out, err, shown)

    return run


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path):
    """Fail a test that leaves a half-written (staging) folder behind."""
    yield
    left = [p.name for p in tmp_path.rglob(".*.tmp-*")] + [
        p.name for p in tmp_path.rglob(".*.old-*")
    ]
    assert not left, f"staging folders left behind: {left}"


@pytest.fixture(scope="session")
def humanoid_artifact(tmp_path_factory) -> Path:
    """A tiny humanoid exported once for the tests that only need some artifact."""
    from edgekit.export import export_onnx
    from edgekit.loader import load

    out = tmp_path_factory.mktemp("art") / "humanoid"
    export_onnx(load("zoo:humanoid:tiny"), out)
    return out


@pytest.fixture
def bench_json(cli, tmp_path):
    """Bench a few ticks under a budget no machine misses; return the JSON report."""
    import json

    def run(model, *args: str) -> dict:
        path = tmp_path / f"bench-{len(list(tmp_path.glob('bench-*.json')))}.json"
        r = cli(
            "bench",
            model,
            "--ticks",
            "2",
            "--warmup",
            "0",
            "--budget-ms",
            "60000",
            *args,
            "--json",
            path,
        )
        assert r.code == 0, r.err
        return json.loads(path.read_text())

    return run


@pytest.fixture(scope="session")
def hostile_inputs(humanoid_artifact) -> dict[str, Path]:
    """Shared, valid inputs for the hostile matrix (cases copy before they modify)."""
    return {"artifact": humanoid_artifact, "calib": ROOT / "calib_data" / "humanoid-tiny.npz"}


@pytest.fixture
def hostile(cli, tmp_path, hostile_inputs):
    """Run one :class:`tests.hostile.Hostile` case: bad run, checks, then the fixed run."""
    from tests.hostile import Workspace, check_clean_error, listing

    def run(case) -> None:
        w = Workspace(tmp_path / "ws", hostile_inputs["artifact"], hostile_inputs["calib"])
        w.dir.mkdir()
        if case.setup:
            case.setup(w)
        before = listing(w.dir)
        r = cli(*case.bad(w))
        check_clean_error(r.code, r.err, case.code, case.needles)
        assert listing(w.dir) == before, f"left behind: {sorted(listing(w.dir) - before)}"
        if case.fixed is None:
            return
        if case.fix:
            case.fix(w)
        r = cli(*case.fixed(w))
        assert r.code == 0, f"fixed command failed (exit {r.code}): {r.err}"

    return run
