"""The CLI as CI calls it: help, listings, exit codes, plain output."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from edgekit.isa import host_isa

COMMANDS = ["models", "targets", "export", "bench", "quantize", "distill", "run", "recipe",
            "recipe check"]  # fmt: skip


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(cli, command):
    args = ["--help"] if command is None else [*command.split(), "--help"]
    r = cli(*args)
    assert r.code == 0
    assert "Usage" in r.out


def test_help_imports_no_torch():
    code = "import sys; from edgekit.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_python_dash_m_version():
    out = subprocess.run(
        [sys.executable, "-m", "edgekit", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("edgekit ")


def test_targets_lists_all_families(cli, tmp_path):
    r = cli("targets", "--json", tmp_path / "t.json")
    assert r.code == 0
    for name in [
        "cpu",
        "cpu-x86-avx2",
        "cpu-arm64",
        "jetson-orin-nano",
        "jetson-orin-nx",
        "jetson-agx-orin",
        "jetson-thor",
        "qcs6490",
        "qrb5165",
        "qcs8550",
    ]:
        assert name in r.out
    rows = json.loads((tmp_path / "t.json").read_text())
    measurable = [t["name"] for t in rows if t["measurable_here"]]
    # this host, and the named CPU classes of this host's architecture (measured here, labelled)
    same_arch = ["cpu-arm64"] if host_isa().arch == "arm64" else ["cpu-x86-vnni", "cpu-x86-avx2"]
    assert measurable == ["cpu", *same_arch]
    nx = next(t for t in rows if t["name"] == "jetson-orin-nx")
    assert nx["memory_gbs"] == 102.4 and nx["source"]


def test_models_table_counts_real_flops(cli, tmp_path):
    r = cli("models", "--kind", "humanoid", "--json", tmp_path / "m.json")
    assert r.code == 0, r.err
    rows = {row["preset"]: row for row in json.loads((tmp_path / "m.json").read_text())}
    # The HOVER MLP is plain Linear layers: FLOPs per tick = 2 * sum(in * out).
    dims = [63 * 25, 512, 256, 128, 19]
    expected = 2 * sum(a * b for a, b in itertools.pairwise(dims))
    assert rows["hover"]["flops_per_tick"] == expected
    assert rows["hover"]["calls_per_tick"] == {"policy": 1}
    assert rows["default"]["params"] > 500_000
    assert "humanoid" in r.out and "hover" in r.out


def test_plain_output_in_ci(cli, humanoid_artifact):
    r = cli("bench", humanoid_artifact, "--ticks", "5", "--warmup", "1", "--budget-ms", "60000")
    assert r.code == 0, r.err
    assert "\x1b[" not in r.out  # no terminal escape codes when CI is set
    assert "MEASURED" in r.out and "verdict: PASS" in r.out


def test_unknown_option_is_usage_error(cli):
    r = cli("bench", "zoo:humanoid:tiny", "--no-such-flag")
    assert r.code == 2
