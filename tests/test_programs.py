"""Loop-program behaviour the zoo promises: carried state, one network for many bodies."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.loader import TorchSource, load
from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.models.hostops import ImageNormalizer
from edgekit.runtimes import TorchRuntime
from edgekit.spec import ProgramSpec


def _torch_ctx(ref: str) -> tuple[TorchSource, TickContext]:
    src = load(ref)
    assert isinstance(src, TorchSource)
    return src, TickContext(TorchRuntime(src.networks, src.spec, threads=1))


@pytest.mark.parametrize("ref", ["zoo:humanoid:tiny", "zoo:world-model:tiny"])
def test_state_is_carried_between_ticks(ref):
    src, ctx = _torch_ctx(ref)
    program = build_program(src.spec.program)
    program.reset(0)
    obs = program.sample_observation(np.random.default_rng(0))
    first = program.tick(ctx, obs)
    second = program.tick(ctx, obs)  # same observation, but history/recurrent state moved on
    key = next(iter(first))
    assert not np.allclose(first[key], second[key])
    program.reset(0)
    again = program.tick(ctx, obs)  # reset restores the episode start exactly
    np.testing.assert_array_equal(first[key], again[key])


def test_one_omni_body_network_drives_three_bodies(cli, bench_json, tmp_path):
    out = tmp_path / "omni"
    assert cli("export", "zoo:omni-body:tiny", "--out", out).code == 0
    for body in ("arm7", "quadruped12", "humanoid19"):
        rep = bench_json(out, "--program", body)
        assert rep["model"]["calls_per_tick"] == {"policy": 1}
    src, ctx = _torch_ctx("zoo:omni-body:tiny")
    for body, dof in (("arm7", 7), ("quadruped12", 12), ("humanoid19", 19)):
        program = build_program(src.spec.programs[body])
        program.reset(0)
        action = program.tick(ctx, program.sample_observation(np.random.default_rng(0)))["action"]
        assert action.shape == (dof,)


def test_diffusion_step_count_is_a_loop_parameter():
    src, ctx = _torch_ctx("zoo:diffusion-policy:tiny")
    for steps in (1, 4, 16):
        params = {**src.spec.program.params, "num_inference_steps": steps}
        program = build_program(ProgramSpec(src.spec.program.name, params))
        program.reset(0)
        ctx.clear()
        out = program.tick(ctx, program.sample_observation(np.random.default_rng(0)))
        assert ctx.calls == {"encoder": 1, "denoiser": steps}
        assert out["action_chunk"].shape == (16, 7)
        assert np.all(np.abs(out["action_chunk"]) <= 1.0 + 1e-6)


def test_image_normalizer_matches_the_plain_formula():
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3)).astype(np.uint8)
    got = ImageNormalizer()(frames)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    want = ((frames / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    assert got.shape == (2, 3, 4, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
