"""The house's shape: stages point one way (import-linter); the robot side runs without torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, error_lines

# Runs in a fresh interpreter where ``import torch`` fails, as on a robot without torch.
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here")

sys.meta_path.insert(0, NoTorch())
from edgekit.cli import main

for argv in {runs!r}:
    sys.argv = ["edgekit", *argv]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise SystemExit(f"{{argv}} exited {{e.code}}")

import edgekit
from edgekit.bench import BenchConfig
report = edgekit.bench({artifact!r}, BenchConfig(ticks=3, warmup=0, budget_ms=60000))
assert report.passed and report.stats.n == 3
policy = edgekit.Policy.load({artifact!r}, budget_ms=60000)
out = policy.act(policy.program.sample_observation(__import__("numpy").random.default_rng(0)))
assert out and policy.report()["ticks"] == 1
print("torch loaded:", any(m == "torch" or m.startswith("torch.") for m in sys.modules))
"""


@pytest.mark.skipif(
    bool(os.environ.get("EDGEKIT_ROBOT_PYTHON")),
    reason="tests/test_robot_venv.py runs the same in a real torch-free venv",
)
def test_bench_and_eval_of_an_exported_artifact_need_no_torch(humanoid_artifact, tmp_path):
    """Without `make robot`'s venv: the same runs with torch's import blocked."""
    pytest.importorskip("gymnasium")
    from edgekit.export import export_onnx
    from edgekit.loader import load

    reacher = tmp_path / "reacher"
    export_onnx(load("zoo:humanoid:reacher"), reacher)
    runs = [
        ["bench", str(humanoid_artifact), "--ticks", "3", "--warmup", "0", "--budget-ms", "6e4"],
        ["bench", str(humanoid_artifact), "--target", "jetson-orin-nx"],  # an estimate
        ["eval", str(reacher), "--env", "reacher", "--episodes", "1", "--teacher", "none"],
        ["targets"],
        ["recipe", "check", str(ROOT / "recipes" / "humanoid.yaml")],
        ["recipe", "check", str(ROOT / "examples" / "diffusion_unet1d" / "recipe.yaml")],
    ]
    code = NO_TORCH.format(runs=runs, artifact=str(humanoid_artifact))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "torch loaded: False" in r.stdout


def test_import_layer_contract():
    """pyproject.toml's [tool.importlinter] contracts: no back-edges, no torch in the core."""
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([exe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_the_verbs_type_check_as_functions(tmp_path):
    """`edgekit.quantize(...)` is the function for a type checker, arguments and result."""
    pytest.importorskip("mypy")
    use = tmp_path / "use.py"
    use.write_text(
        "import edgekit\n"
        "from edgekit.quantize import Int8Config\n"
        "r = edgekit.quantize('zoo:vla:tiny', 'out', Int8Config(), 'calib.npz')\n"
        "reveal_type(r)\n"
        "from edgekit.bench import BenchConfig\n"
        "edgekit.bench('out', BenchConfig(ticks='many'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", str(use)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert 'Revealed type is "edgekit.quantize.api.QuantizeResult"' in r.stdout, r.stdout
    assert 'Argument "ticks" to "BenchConfig" has incompatible type "str"' in r.stdout, r.stdout


# As Python reports a package that is not installed.
NO_TORCH_ONLY = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
"""


def test_a_command_that_needs_torch_says_which_extra_without_it(tmp_path):
    """The base install is the robot side; making artifacts is the `compress` extra."""
    code = NO_TORCH_ONLY + (
        "from edgekit.cli import main\n"
        f"sys.argv = ['edgekit', 'export', 'zoo:humanoid:tiny', '--out', {str(tmp_path / 'x')!r}]\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == 3, (r.returncode, r.stderr[-2000:])
    assert error_lines(r.stderr) == [
        "error: this needs torch, which is not installed here: pip install 'edgekit[compress]'"
    ]
    assert not (tmp_path / "x").exists()
