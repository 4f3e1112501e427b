"""``edgekit eval``: closed-loop episodes in MuJoCo (gymnasium Reacher-v5), seeded and short."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

from edgekit.eval import EvalConfig, evaluate, get_task, wilson
from edgekit.loader import SHIPPED_WEIGHTS, load

MLP = "zoo:humanoid:reacher"
DP = "zoo:diffusion-policy:reacher"
CALIB = Path(__file__).resolve().parents[1] / "calib_data"


@pytest.fixture(scope="module")
def random_mlp(tmp_path_factory) -> Path:
    """The reacher MLP at its seeded init (untrained), exported: a policy that fails the task."""
    from edgekit.export import export_onnx
    from edgekit.loader import load_zoo

    out = tmp_path_factory.mktemp("eval") / "untrained"
    export_onnx(load_zoo(MLP, None, shipped=False), out, tick_checks=0)
    return out


@pytest.fixture(scope="module")
def int8_mlp(tmp_path_factory) -> Path:
    from edgekit.quantize import Int8Config, quantize

    out = tmp_path_factory.mktemp("eval") / "int8"
    quantize(MLP, out, Int8Config(latency_ticks=0), CALIB / "reacher-humanoid.npz")
    return out


def test_the_task_scores_an_expert_and_a_bad_policy_apart():
    task = get_task("reacher")
    env = task.make(render=False)
    outcomes = {"expert": [], "still": []}
    for name in outcomes:
        for seed in range(5):
            obs, _ = env.reset(seed=seed)
            for _ in range(task.max_steps):
                act = task.expert(env) if name == "expert" else np.zeros(2, np.float32)
                obs, *_ = env.step(act)
            outcomes[name].append(task.success(env, obs))
    env.close()
    assert all(outcomes["expert"])
    assert not any(outcomes["still"])


def test_shipped_teachers_load_by_default_with_their_training_record():
    for kind in ("humanoid", "diffusion-policy"):
        path = SHIPPED_WEIGHTS / f"{kind}-reacher.safetensors"
        assert path.is_file(), path
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["closed_loop"]["episodes"] >= 50 and record["steps"] > 0
        assert load(f"zoo:{kind}:reacher").weights == str(path)


@pytest.mark.parametrize("kind", ["humanoid", "diffusion-policy"])
def test_the_teachers_have_learned_the_task(kind):
    """>= 80% success in closed loop on episodes apart from their training record's."""
    record = json.loads((SHIPPED_WEIGHTS / f"{kind}-reacher.json").read_text())
    assert record["closed_loop"]["success_rate"] >= 0.8
    res = evaluate(f"zoo:{kind}:reacher", EvalConfig(episodes=10, seed=100, teacher="none"))
    assert res.candidate.success_rate >= 0.8, res.report["candidate"]["per_episode"]


def test_position_commands_are_tracked_by_the_joint_controller():
    """A diffusion policy's chunk holds joint positions relative to the tick's joints: the
    expert's target as such a command, run open loop for 8 steps at a time, reaches the target;
    the MLP's actions are torques, passed through."""
    task = get_task("reacher")
    env = task.make(render=False)
    reached = []
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        for step in range(task.max_steps):
            if step % 8 == 0:
                anchor = task.anchor(env)
                command = task.label(env, "joint_position", anchor)
                assert np.all(np.abs(command) <= 1.0)
                # at the tick, tracking the command is exactly the expert's torque
                np.testing.assert_allclose(
                    task.actuate(env, command, "joint_position", anchor), task.expert(env),
                    atol=1e-6,
                )  # fmt: skip
            obs, *_ = env.step(task.actuate(env, command, "joint_position", anchor))
        reached.append(task.success(env, obs))
    torque = np.array([0.3, -2.0], np.float32)
    np.testing.assert_allclose(task.actuate(env, torque, "torque", None), [0.3, -1.0], atol=1e-7)
    env.close()
    assert all(reached)


def test_seeded_episodes_are_deterministic():
    a = evaluate(DP, EvalConfig(episodes=2, seed=7, teacher="none"))
    b = evaluate(DP, EvalConfig(episodes=2, seed=7, teacher="none"))
    ra = [(e.seed, e.success, e.ret, e.ticks) for e in a.candidate.episodes]
    rb = [(e.seed, e.success, e.ret, e.ticks) for e in b.candidate.episodes]
    assert ra == rb
    assert [e.seed for e in a.candidate.episodes] == [7, 8]
    # 50 steps, replanning every 8 executed actions of the chunk: 7 ticks of 16 denoiser calls
    assert all(e.steps == 50 and e.ticks == 7 for e in a.candidate.episodes)
    c = evaluate(DP, EvalConfig(episodes=2, seed=9, teacher="none"))
    assert [e.ret for e in c.candidate.episodes] != [e.ret for e in a.candidate.episodes]


def test_compressed_artifact_next_to_its_teacher(int8_mlp, cli, tmp_path):
    res = evaluate(str(int8_mlp), EvalConfig(episodes=6, min_success_ratio=0.5))
    assert res.teacher is not None and res.teacher.ref == MLP  # found through the manifest
    assert res.ratio == pytest.approx(res.candidate.success_rate / res.teacher.success_rate)
    rep = res.report
    assert rep["candidate"]["success_ci_method"] == "Wilson score interval"
    assert len(rep["candidate"]["per_episode"]) == 6 and rep["gate"]["passed"] is True
    out = tmp_path / "eval.json"
    r = cli("eval", int8_mlp, "--env", "reacher", "-n", "3", "--json", out)
    assert r.code == 0, r.err
    assert "teacher" in r.out and "candidate" in r.out and "Wilson" in r.out
    written = json.loads(out.read_text())
    assert written["teacher"]["ref"] == MLP and written["task"]["commands"] == "torque"
    assert "the model commands torque" in r.out


def test_gate_fails_an_untrained_policy(random_mlp, cli):
    r = cli("eval", random_mlp, "-n", "4", "--teacher", MLP, "--min-success-ratio", "0.9")
    assert r.code == 1
    assert r.err.startswith("error: success ratio ") and "--min-success-ratio 0.9" in r.err
    assert "verdict: FAIL" in r.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "push-t"], "--env 'push-t': unknown task"),
        (["-n", "0"], "--episodes 0: must be >= 1"),
        (["--min-success-ratio", "0.9", "--teacher", "none"], "needs a teacher"),
    ],
)
def test_bad_input_is_one_line(cli, args, message):
    r = cli("eval", MLP, *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1


def test_a_model_that_cannot_drive_the_task(cli):
    r = cli("eval", "zoo:vla:tiny", "-n", "1")
    assert r.code == 2 and "cannot drive task 'reacher'" in r.err


def test_wilson_interval():
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)


def test_the_training_script_reproduces_teachers(tmp_path):
    """benchmarks/train_teachers.py end to end at a few demonstrations and steps: weights that
    load into the presets, a training record with its closed-loop result, the recordings."""
    import sys

    from safetensors.torch import load_file

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        import train_teachers
    finally:
        sys.path.remove(str(bench))
    args = ["--episodes", "4", "--steps", "20", "--eval-episodes", "1", "--dart-episodes", "2"]
    out = ["--out", str(tmp_path / "w"), "--calib-out", str(tmp_path / "c")]
    assert train_teachers.main([*args, *out]) == 0
    for kind in ("humanoid", "diffusion-policy"):
        weights = tmp_path / "w" / f"{kind}-reacher.safetensors"
        shipped = load_file(str(SHIPPED_WEIGHTS / weights.name))
        assert load_file(str(weights)).keys() == shipped.keys()
        record = json.loads(weights.with_suffix(".json").read_text())
        assert record["steps"] == 20 and record["demonstrations"] == 4
        assert record["closed_loop"]["episodes"] == 1
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "reacher-diffusion-policy-dart.npz", "reacher-diffusion-policy.npz",
        "reacher-humanoid-dart.npz", "reacher-humanoid.npz",
    ]  # fmt: skip
