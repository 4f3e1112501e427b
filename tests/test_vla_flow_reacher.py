"""``zoo:vla-flow:reacher``: the flow-matching VLA as a closed-loop Reacher teacher (camera frame
+ state, joint-position chunks), its binding, and its shipped weights' training record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.artifacts import sha256_file
from edgekit.errors import BadInputError
from edgekit.loader import SHIPPED_WEIGHTS, load_zoo
from edgekit.loop import TickContext
from edgekit.models import build_program, get_binding
from edgekit.models.vla_flow.observe import CameraState, downsample
from edgekit.runtimes import TorchRuntime

REF = "zoo:vla-flow:reacher"
WEIGHTS = SHIPPED_WEIGHTS / "vla-flow-reacher.safetensors"


def test_the_reacher_preset_plans_every_tick_and_hands_over_its_n_action_steps():
    src = load_zoo(REF, None, shipped=False)
    params = src.spec.program.params
    assert params["host_queue"] is False and params["n_action_steps"] == 8
    prog = build_program(src.spec.program)
    prog.reset(0)
    rt = TorchRuntime(src.networks, src.spec, threads=1)
    obs = {
        "images": np.zeros((1, 32, 32, 3), np.uint8),
        "instruction": np.array([1, 2], np.int64),
        "proprio": np.zeros(10, np.float32),
    }
    calls = []
    for _ in range(2):
        ctx = TickContext(rt)
        out = prog.tick(ctx, obs)
        calls.append(dict(ctx.calls))
        assert out["actions"].shape == (8, 2) and out["action_chunk"].shape == (16, 2)
        assert np.all(np.abs(out["actions"]) <= 1.0)
    assert calls == [{"prefix": 1, "expert": 10}] * 2  # a plan at every tick, the cached prefix
    binding = get_binding("vla-flow")
    assert binding.plans_every(params) == 8 and len(binding.actions(out)) == 8
    assert binding.command_for(params) == "joint_position" and binding.renders(params)


def test_the_other_presets_keep_their_queue():
    params = load_zoo("zoo:vla-flow:tiny", None, shipped=False).spec.program.params
    assert "host_queue" not in params
    assert get_binding("vla-flow").plans_every(params) == 1


def test_the_observer_downsamples_the_camera_and_refuses_a_preset_it_cannot_feed():
    frame = np.arange(96 * 96 * 3, dtype=np.int64).reshape(96, 96, 3) % 256
    small = downsample(frame.astype(np.uint8), 32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    tiny = load_zoo("zoo:vla-flow:tiny", None, shipped=False).spec.program.params
    with pytest.raises(BadInputError, match="one camera"):
        CameraState(tiny)


def test_the_binding_runs_an_untrained_reacher_episode():
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from edgekit.eval import EvalConfig, evaluate

    src = load_zoo(REF, None, shipped=False)
    res = evaluate(src, EvalConfig(episodes=1, seed=0, teacher="none"))
    (ep,) = res.candidate.episodes
    assert ep.steps == 50 and ep.ticks == 7  # 8 actions per plan: ceil(50 / 8)


needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason="no shipped vla-flow teacher")


@needs_weights
def test_the_shipped_teacher_loads_by_default_with_its_training_record():
    record = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert record["weights_sha256"] == sha256_file(WEIGHTS)
    assert record["closed_loop"]["episodes"] >= 50
    assert record["closed_loop"]["success_rate"] >= 0.8
    assert record["commands"] == "joint_position" and record["steps"] > 0
    assert load_zoo(REF, None).weights == str(WEIGHTS)


@needs_weights
def test_the_shipped_teacher_has_learned_the_task():
    """Most of 5 episodes apart from the training record's (seeds 100-104) succeed."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    from edgekit.eval import EvalConfig, evaluate

    res = evaluate(REF, EvalConfig(episodes=5, seed=100, teacher="none"))
    assert res.candidate.successes >= 4, res.report["candidate"]["per_episode"]
