"""The robot side in a real torch-free install: a second venv with the base package (and the
simulator eval needs) built from this checkout by ``make robot``, as a robot computer installs
it. Artifacts come from the full environment; bench, eval, estimates and ``edgekit.Policy`` run
them there, and Policy's actions match the full environment's tick for tick.

``make test`` builds that venv and points ``EDGEKIT_ROBOT_PYTHON`` at it; CI fails without it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli.env import in_ci
from tests.conftest import ROOT

ROBOT = os.environ.get("EDGEKIT_ROBOT_PYTHON", "")

POLICY = """
import json, sys
import numpy as np
import edgekit

policy = edgekit.Policy.load(sys.argv[1], budget_ms=60000)
rng = np.random.default_rng(0)
acts = []
for _ in range(5):
    out = policy.act(policy.program.sample_observation(rng))
    acts.append({k: np.asarray(v).tolist() for k, v in out.items()})
rep = policy.report()
print(json.dumps({"acts": acts, "ticks": rep["ticks"], "runtime": rep["runtime"],
                  "torch": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def robot() -> Path:
    if not ROBOT:
        if in_ci():
            pytest.fail("EDGEKIT_ROBOT_PYTHON is not set: run the tests with `make test`")
        pytest.skip("no torch-free venv: `make test` builds one (make robot)")
    python = Path(ROBOT)
    assert python.is_file(), f"{python}: run `make robot`"
    return python


def _run(python: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300, check=False)  # fmt: skip


def test_the_robot_venv_has_no_torch(robot):
    r = _run(robot, "-c", "import torch")
    assert r.returncode != 0 and "No module named 'torch'" in r.stderr
    r = _run(robot, "-c", "import edgekit, onnxruntime; print(edgekit.__file__)")
    assert r.returncode == 0 and r.stdout.strip().startswith(str(ROOT)), r.stderr


def test_bench_estimate_and_eval_run_there(robot, humanoid_artifact, tmp_path):
    pytest.importorskip("gymnasium")
    from edgekit.export import export_onnx
    from edgekit.loader import load

    reacher = export_onnx(load("zoo:humanoid:reacher"), tmp_path / "reacher").out
    exe = robot.parent / "edgekit"
    out = tmp_path / "bench.json"
    r = _run(exe, "bench", str(humanoid_artifact), "--ticks", "20", "--budget-ms", "60000",
             "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["measurement"]["kind"] == "measured" and rep["stats_ms"]["n"] == 20
    assert rep["environment"]["versions"].get("torch") is None
    r = _run(exe, "bench", str(humanoid_artifact), "--target", "jetson-orin-nx")
    assert r.returncode in (0, 1), r.stderr
    assert "estimated" in r.stdout.lower()
    ev = tmp_path / "eval.json"
    r = _run(exe, "eval", str(reacher), "--env", "reacher", "--episodes", "1", "--teacher",
             "none", "--json", str(ev))  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(ev.read_text())["episodes"]


def test_policy_acts_there_as_in_the_full_environment(robot, humanoid_artifact):
    import edgekit

    r = _run(robot, "-c", POLICY, str(humanoid_artifact))
    assert r.returncode == 0, r.stderr
    there = json.loads(r.stdout.strip().splitlines()[-1])
    assert there["torch"] is False and there["ticks"] == 5 and there["runtime"] == "ort"
    here = edgekit.Policy.load(humanoid_artifact, budget_ms=60000)
    rng = np.random.default_rng(0)
    for acts in there["acts"]:
        out = here.act(here.program.sample_observation(rng))
        for k, v in out.items():
            np.testing.assert_allclose(np.asarray(acts[k]), v, rtol=1e-5, atol=1e-6)


def test_targets_and_recipe_check_run_there(robot):
    exe = robot.parent / "edgekit"
    r = _run(exe, "targets")
    assert r.returncode == 0 and "jetson-orin-nx" in r.stdout, r.stderr
    for recipe in ("recipes/humanoid.yaml", "examples/diffusion_unet1d/recipe.yaml"):
        r = _run(exe, "recipe", "check", recipe)
        assert r.returncode == 0, (recipe, r.stderr)


def test_making_an_artifact_there_names_the_extra(robot, tmp_path):
    r = _run(robot.parent / "edgekit", "quantize", "zoo:humanoid:tiny", "--calib",
             "calib_data/humanoid-tiny.npz", "--out", str(tmp_path / "q"))  # fmt: skip
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().endswith("pip install 'edgekit[compress]'")
    assert not (tmp_path / "q").exists()


def test_user_code_that_needs_torch_there_names_the_extra(robot, tmp_path):
    """An artifact made from a factory: its torch twin (and the factory, which imports torch)
    is exit 3 naming the extra there, with or without trusting the factory."""
    from edgekit.export import export_onnx
    from edgekit.loader import load

    art = tmp_path / "art"
    factory = f"{ROOT / 'tests' / 'fixtures' / 'user_models.py'}:with_specs"
    export_onnx(load(factory), art)
    exe = str(robot.parent / "edgekit")
    for trust in ((), ("--allow-plugin",)):
        r = _run(exe, "bench", str(art), "--runtime", "torch", *trust)
        assert r.returncode == 3, r.stderr
        assert r.stderr.strip().endswith("pip install 'edgekit[compress]'"), r.stderr
    r = _run(exe, "export", factory, "--out", str(tmp_path / "again"))
    assert r.returncode == 3 and "user_models.py" in r.stderr, r.stderr
    assert r.stderr.strip().endswith("pip install 'edgekit[compress]'"), r.stderr


def test_openvino_benches_and_acts_there(robot, humanoid_artifact, tmp_path):
    """The openvino extra on the robot: bench and edgekit.Policy on OpenVINO, still no torch,
    on an FP32 artifact and on an NNCF INT8 one (OpenVINO IR) made in the full environment."""
    pytest.importorskip("nncf")
    from edgekit.loader import load
    from edgekit.quantize import Int8Config, quantize

    int8 = tmp_path / "int8"
    config = Int8Config(runtime="openvino", latency_ticks=0)
    assert quantize(load(str(humanoid_artifact)), int8, config, "synthetic").written
    for art in (humanoid_artifact, int8):
        _bench_and_act_on_openvino(robot, art, tmp_path)


def _bench_and_act_on_openvino(robot: Path, humanoid_artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ("--runtime", "openvino", "--ticks", "5", "--warmup", "0", "--budget-ms", "60000")
    r = _run(robot.parent / "edgekit", "bench", str(humanoid_artifact), *args, "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert (
        rep["runtime"]["runtime"] == "openvino" and rep["runtime"]["inference_precision"] == "f32"
    )
    script = POLICY.replace("budget_ms=60000)", "budget_ms=60000, runtime='openvino')")
    r = _run(robot, "-c", script, str(humanoid_artifact))
    assert r.returncode == 0, r.stderr
    there = json.loads(r.stdout.strip().splitlines()[-1])
    assert there["torch"] is False and there["runtime"] == "openvino" and there["ticks"] == 5
