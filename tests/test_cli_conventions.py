"""The conventions every command keeps (issue 17): one test each.

``--json -`` is stdout with nothing else on it; ``--quiet`` leaves errors and the verdict line;
``CI`` is a boolean; ``NO_COLOR`` / ``FORCE_COLOR``; ``--version``; shell completion;
``EDGEKIT_*`` defaults; usage errors are one line, exit 2, before torch loads; every ``--help``
lists its choices and one example and fits 80 columns; ``edgekit models`` builds no model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from typing import get_args

import pytest

from tests.conftest import ROOT, error_lines

COMMANDS = ["models", "targets", "distill", "export", "quantize", "bench", "eval", "run",
            "recipe check"]  # fmt: skip
BENCH = ["bench", "zoo:humanoid:tiny", "--ticks", "5", "--warmup", "0", "--budget-ms", "60000"]


# --- --json - ------------------------------------------------------------------------------


def test_json_dash_is_stdout_and_nothing_else(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli(*BENCH, "--json", "-")
    assert r.code == 0, r.err
    rep = json.loads(r.out)  # the whole of stdout parses
    assert isinstance(rep, dict) and "zoo:humanoid:tiny" in r.out
    assert "verdict: PASS" in r.err  # what people read went to stderr
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("command", ["models", "targets"])
def test_json_dash_on_listings(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    r = cli(command, "--json", "-")
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert isinstance(rows, list) and rows
    assert not (tmp_path / "-").exists()


# --- --quiet -------------------------------------------------------------------------------


def test_quiet_keeps_errors_and_the_verdict_line(cli):
    r = cli(*BENCH, "--quiet")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [r.out.strip()] and r.out.startswith("verdict: PASS")
    assert r.err == ""
    r = cli(*BENCH, "-q", "--json", "-")  # nothing but the JSON
    assert r.code == 0 and isinstance(json.loads(r.out), dict) and r.err == ""
    for command in ("models", "targets"):  # no verdict: nothing
        r = cli(command, "-q")
        assert r.code == 0 and r.out == "" and r.err == ""
    r = cli("bench", "zoo:humanoid:tiny", "--gate", "p42", "-q")  # errors still show
    assert r.code == 2 and r.err.startswith("error: --gate 'p42'") and r.out == ""


# --- CI, NO_COLOR, FORCE_COLOR -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ci"),
    [(None, False), ("", False), ("0", False), ("false", False), ("False", False),
     ("no", False), ("off", False), ("true", True), ("1", True), ("yes", True),
     ("woodpecker", True)],
)  # fmt: skip
def test_ci_is_a_boolean(monkeypatch, value, ci):
    from edgekit.cli.env import in_ci

    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_ci_is_read_in_one_place():
    readers = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "edgekit").rglob("*.py")
        if re.search(r"""["']CI["']""", p.read_text())
    ]
    assert readers == ["edgekit/cli/env.py"]


def test_ci_false_is_not_ci_and_no_color_has_no_escapes(cli, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # captured stdout is no terminal: force rich
    monkeypatch.setenv("CI", "false")
    r = cli("targets")
    assert r.code == 0 and "\x1b[" in r.out  # CI=false: a terminal's output
    monkeypatch.setenv("NO_COLOR", "1")
    r = cli("targets")
    assert r.code == 0 and "\x1b[" not in r.out and "jetson-orin-nx" in r.out
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("CI", "true")
    r = cli("targets")
    assert r.code == 0 and "\x1b[" not in r.out


# --- --version, completion -----------------------------------------------------------------


def test_version(cli):
    from edgekit import __version__

    r = cli("--version")
    assert r.code == 0 and r.out == f"edgekit {__version__}\n"
    assert __version__ == version("edgekit")  # the package metadata says the same


def test_shell_completion(cli, monkeypatch):
    r = cli("--help")
    assert "--install-completion" in r.out and "--show-completion" in r.out
    monkeypatch.setenv("_EDGEKIT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "edgekit bench m --runtime ")
    monkeypatch.setenv("COMP_CWORD", "4")
    r = cli()
    assert r.code == 0 and r.out.split() == ["ort", "openvino", "torch", "tensorrt"]
    monkeypatch.setenv("COMP_WORDS", "edgekit qu")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert cli().out.split() == ["quantize"]


# --- EDGEKIT_* defaults --------------------------------------------------------------------


def test_env_defaults_take_effect(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEKIT_TARGET", "jetson-nanoo")
    r = cli("bench", "zoo:humanoid:tiny")
    assert r.code == 2 and "unknown target 'jetson-nanoo'" in r.err
    r = cli("quantize", "zoo:humanoid:tiny", "--target", "cpu", "--out", tmp_path / "q")
    assert r.code == 2 and "--calib is required" in r.err  # the command line wins
    monkeypatch.delenv("EDGEKIT_TARGET")
    monkeypatch.setenv("EDGEKIT_THREADS", "0")
    r = cli("bench", "zoo:humanoid:tiny")
    assert r.code == 2 and "--threads 0: must be >= 1" in r.err
    monkeypatch.delenv("EDGEKIT_THREADS")
    monkeypatch.setenv("EDGEKIT_DEBUG", "1")
    r = cli("bench", "zoo:humanoid:tiny", "--gate", "p42")
    assert r.code == 2 and "Traceback" in r.err
    monkeypatch.setenv("EDGEKIT_DEBUG", "0")
    r = cli("bench", "zoo:humanoid:tiny", "--gate", "p42")
    assert r.code == 2 and "Traceback" not in r.err


# --- usage errors --------------------------------------------------------------------------

USAGE_ERRORS = [
    (["quantize", "zoo:humanoid:tiny", "--out", "q"], "--calib is required"),
    (["quantize", "zoo:humanoid:tiny", "--out", "q", "--calib", "nope.npz"], "nope.npz: no such"),
    (["quantize", "zoo:humanoid:tiny", "--out", "q", "--precision", "int3"], "--precision 'int3'"),
    (["quantize", "zoo:humanoid:tiny", "--out", "q", "--target", "tpu"], "unknown target 'tpu'"),
    (["distill", "zoo:humanoid:tiny", "--out", "d", "--lr", "-1"], "--lr -1.0: must be > 0"),
    (["distill", "zoo:humanoid:tiny", "--out", "d", "--width", "0.5"], "--data is required"),
    (["distill", "zoo:humanoid:tiny", "--out", "d", "--width", "0.5", "--data", "synthetic",
      "--resume"], "--resume: no checkpoint"),
    (["export", "zoo:humanoid:tiny", "--out", "e", "--format", "onnx2"], "--format 'onnx2'"),
    (["export", "zoo:humanoid:tiny", "--out", "e", "-f", "qnn", "-t", "qcs"], "unknown target"),
    (["bench", "zoo:humanoid:tiny", "--runtime", "tvm"], "--runtime 'tvm'"),
    (["bench", "zoo:humanoid:tiny", "--ticks", "many"], "invalid value for '--ticks'"),
    (["bench", "zoo:humanoid:nope"], "unknown preset 'nope'"),
    (["bench", "zoo:humanoids"], "unknown zoo model 'humanoids'"),
    (["bench"], "missing argument 'MODEL'"),
    (["bench", "zoo:humanoid:tiny", "--nope"], "no such option: --nope"),
    (["eval", "zoo:humanoid:tiny", "--env", "cartpole"], "--env 'cartpole'"),
    (["models", "--kind", "robot-dog"], "unknown zoo model 'robot-dog'"),
]  # fmt: skip

PROBE = """
import json, sys
from edgekit.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    sys.argv = ["edgekit", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    results.append([code, "torch" in sys.modules])
print(json.dumps(results))
"""


def test_usage_errors_are_one_line_and_load_no_torch(tmp_path):
    """Each bad command exits 2 with one line naming the option, before torch is imported
    (all run in one process, in order, so the first that imported torch is the one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"}
    argvs = [argv for argv, _ in USAGE_ERRORS]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argvs)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    results = json.loads(out.stdout)
    lines = error_lines(out.stderr)
    assert len(lines) == len(USAGE_ERRORS), out.stderr  # one line each
    for (argv, needle), (code, torch), line in zip(USAGE_ERRORS, results, lines, strict=True):
        assert code == 2, (argv, line)
        assert line.startswith("error: ") and needle in line, (argv, line)
        assert "('" not in line and "Traceback" not in line, line  # no Python repr
        assert not torch, f"{argv} imported torch before failing"
    assert not list(tmp_path.iterdir())  # nothing written


# --- help ----------------------------------------------------------------------------------


def _help(cli, monkeypatch, command: str | None) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    r = cli(*(command.split() if command else []), "--help")
    assert r.code == 0
    return r.out


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_80_columns_with_an_example(cli, monkeypatch, command):
    text = _help(cli, monkeypatch, command)
    assert max(map(len, text.splitlines())) <= 80, text
    assert "<bool>" not in text and "\x1b[" not in text
    assert re.search(r"Example:\n?\s+edgekit " + (command or ""), text), text
    if command in ("bench", "quantize"):
        assert "[env var: EDGEKIT_TARGET" in _joined(text)


def _joined(text: str) -> str:
    """Help text with click's line wrapping undone (it may break inside jetson-orin-nx)."""
    return " ".join(re.sub(r"-\n\s+", "-", text).split())


@pytest.mark.parametrize(
    ("command", "choices"),
    [
        (
            "bench",
            [
                "[ort|openvino|torch|tensorrt]",
                "[p50|p90|p99|max|mean]",
                "[fp32|bf16|fp16|int8|int16]",
            ],
        ),
        ("quantize", ["[int8|int4|mixed]", "[minmax|percentile|entropy]", "[32|64|128]"]),
        ("export", ["[onnx|qnn|tensorrt]", "[fp16|int8|fp32]"]),
        ("eval", ["[reacher]"]),
    ],
)
def test_help_lists_choices(cli, monkeypatch, command, choices):
    from edgekit.targets import TARGETS

    text = _joined(_help(cli, monkeypatch, command))
    for c in choices:
        assert c in text, c
    if command != "eval":
        assert all(t in text for t in TARGETS.names()), text


def test_choices_are_the_configs():
    from edgekit.bench.config import BenchConfig
    from edgekit.cli import options
    from edgekit.eval import TASKS
    from edgekit.export.config import FORMATS, TensorRTExport
    from edgekit.quantize.config import Int4Config, Int8Config, MixedConfig
    from edgekit.targets import TARGETS

    def literal(cls, field):  # Literal[...] or Literal[...] | None -> its values
        args = get_args(cls.model_fields[field].annotation)
        return tuple(x for a in args for x in (get_args(a) or (a,)) if x is not type(None))

    precisions = (Int8Config, Int4Config, MixedConfig)
    configs = {
        "--target": tuple(TARGETS.names()),
        "bench --runtime": literal(BenchConfig, "runtime"),
        "bench --gate": literal(BenchConfig, "gate"),
        "bench --precision": literal(BenchConfig, "precision"),
        "quantize --precision": tuple(literal(c, "precision")[0] for c in precisions),
        "quantize --method": literal(Int8Config, "method"),
        "quantize --block-size": literal(Int4Config, "block_size"),
        "export --format": FORMATS,
        "export --precision": literal(TensorRTExport, "precision"),
        "eval --env": tuple(TASKS),
    }
    cli = dict(zip(configs, (options.TARGET_NAMES, options.BENCH_RUNTIMES, options.GATES,
                             options.BENCH_PRECISIONS, options.QUANTIZE_PRECISIONS,
                             options.METHODS, options.BLOCK_SIZES, options.FORMATS,
                             options.TENSORRT_PRECISIONS, options.ENVS), strict=True))  # fmt: skip
    assert cli == configs


# --- edgekit models ------------------------------------------------------------------------


def test_models_builds_nothing(tmp_path):
    """The listing reads the record of this model code: no torch, no model built."""
    code = (
        "import sys; from edgekit.cli import main; sys.argv = ['edgekit', 'models', '--json', "
        "'-']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    rows = json.loads(out.stdout)
    assert out.stderr.strip().splitlines()[-1] == "False"
    assert {r["figures"] for r in rows} == {"recorded"}
    assert {"vla", "humanoid", "world-model"} <= {r["kind"] for r in rows}


def test_models_record_is_current():
    from edgekit.zoo_table import recorded

    assert recorded() is not None, (
        "edgekit/zoo/facts.json was recorded for other model code: run "
        "`python -m edgekit.zoo_table` and commit the file"
    )


def test_models_record_matches_a_recount(cli):
    from edgekit.zoo_table import zoo_rows

    rows, how = zoo_rows("humanoid")
    assert how == "recorded"
    counted, how = zoo_rows("humanoid", recount=True)
    assert how == "counted" and counted == rows
    r = cli("models", "--kind", "humanoid", "--recount", "--json", "-")
    assert r.code == 0 and {row["figures"] for row in json.loads(r.out)} == {"counted"}
