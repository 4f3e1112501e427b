"""`edgekit distill --denoise-steps 1|2` for the flow-matching VLA (zoo:vla-flow) and the
diffusion policy's 1-step student; bad input.

Tiny presets, tens of optimiser steps: the checks are about behaviour (the student is written,
its tick makes N expert calls, training moves it towards the teacher on held-out data), not
about how good a CPU-minute student gets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.artifacts import load_artifact
from edgekit.distill import DistillConfig, distill
from edgekit.distill.api import checkpoint_dir
from edgekit.distill.steps_flow import flow_sampler, prefix_cache
from edgekit.loader import load
from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, TorchRuntime

REF = "zoo:vla-flow:tiny"


def _config(n: int, **kw: object) -> DistillConfig:
    # a random-init teacher is far from its own N-step grid: a higher LR than the default
    # (1e-4, for fine-tuning trained experts) closes the gap in few steps
    base = {"steps": 30, "batch_size": 8, "lr": 1e-3, "latency_ticks": 2, "checkpoint_every": 0}
    return DistillConfig(denoise_steps=n, **{**base, **kw})


@pytest.fixture(scope="module", params=[1, 2])
def flow_student(request, tmp_path_factory) -> tuple[int, Path, dict]:
    torch.set_num_threads(2)
    n = request.param
    out = tmp_path_factory.mktemp("flow") / f"flow{n}"
    result = distill(REF, out, _config(n), "synthetic")
    assert result.passed and result.written
    return n, out, result.report


# --- the student sampler ----------------------------------------------------------------------


def test_student_grid_is_every_kth_teacher_time():
    teacher = flow_sampler(10)
    for n in (1, 2, 5):
        student = flow_sampler(n)
        assert student.timesteps == pytest.approx(teacher.timesteps[:: 10 // n])
        # each Euler step spans K/N teacher steps, ending at t = 0
        assert float(student.coefs.sum()) == pytest.approx(-1.0)
        assert student.coefs[:, 0].tolist() == pytest.approx([-1.0 / n] * n)


def test_torch_rollout_matches_the_program_tick():
    """The objective's teacher rollout (torch, from the KV cache) is the program's chunk."""
    from edgekit.distill.rollout import RolloutObjective
    from edgekit.distill.steps_flow import _call

    src = load(REF)
    params = dict(src.spec.program.params)
    prog = build_program(src.spec.program)
    prog.reset(3)
    o = prog.sample_observation(np.random.default_rng(0))
    cache = prefix_cache(src.networks["prefix"], params, [o])
    obj = RolloutObjective(
        src.networks["expert"], _call, cache, (params["chunk"], params["action_dim"]),
        flow_sampler(10), flow_sampler(2), jitter=0.0, span=None,
    )  # fmt: skip
    prog.reset(3)
    x = prog.rng.standard_normal((1, params["chunk"], params["action_dim"])).astype(np.float32)
    prog.reset(3)
    want = prog.tick(TickContext(TorchRuntime(src.networks, src.spec, threads=1)), o)
    got = obj.teacher_states(torch.from_numpy(x), cache)
    assert len(got) == 2
    chunk = got[-1][0].numpy() * params["action_std"] + params["action_mean"]  # unnormalize
    chunk = np.clip(chunk, params["action_low"], params["action_high"])  # as the program does
    np.testing.assert_allclose(chunk, want["action_chunk"], atol=1e-4)


# --- the 1- and 2-step flow students end to end -----------------------------------------------


def test_flow_student_is_written_with_n_expert_calls(flow_student):
    n, out, rep = flow_student
    art = load_artifact(out)
    assert art.manifest.stage == "distill"
    assert art.manifest.spec.program.name == "vla-flow"
    assert art.manifest.spec.program.params["steps"] == n
    assert set(art.manifest.files) == {"prefix", "expert"}
    assert (out / "student.safetensors").is_file() and not checkpoint_dir(out).exists()
    assert rep["teacher"]["calls_per_tick"] == {"prefix": 1, "expert": 10}
    assert rep["student"]["calls_per_tick"] == {"prefix": 1, "expert": n}
    # the calls a planning tick of the shipped artifact records
    program = build_program(art.manifest.spec.program)
    program.reset(0)
    ctx = TickContext(OrtRuntime({k: art.file(k) for k in art.manifest.files}, threads=1))
    out_tick = program.tick(ctx, program.sample_observation(np.random.default_rng(0)))
    assert ctx.calls == {"prefix": 1, "expert": n}
    assert np.all(np.isfinite(out_tick["action_chunk"]))


def test_flow_student_beats_the_same_grid_without_training(flow_student):
    n, _, rep = flow_student
    fid = rep["fidelity"]
    assert fid["headline"]["metric"] == "action_range_mean_abs"
    assert "Euler-10" in fid["scope"] and f"same {n}-step" in fid["undistilled_baseline"]["what"]
    assert fid["student"]["mean_abs"] < 0.8 * fid["undistilled_baseline"]["mean_abs"]
    assert fid["student"]["rel_l2"] < fid["undistilled_baseline"]["rel_l2"]
    assert rep["training"]["loss_last"] < rep["training"]["loss_first"]
    assert "Flow Straight and Fast" in rep["method"]


def test_flow_student_prefix_is_the_teachers(flow_student):
    """The prefix is frozen and shared: the student's prefix weights are the teacher's."""
    from safetensors.torch import load_file

    _, out, _ = flow_student
    src = load(REF)
    saved = load_file(str(out / "student.safetensors"))
    for k, v in src.networks["prefix"].state_dict().items():
        torch.testing.assert_close(saved[f"prefix.{k}"], v)
    changed = [k for k, v in src.networks["expert"].state_dict().items()
               if not torch.equal(saved[f"expert.{k}"], v)]  # fmt: skip
    assert changed  # the expert was trained


# --- the diffusion policy's 1-step student ----------------------------------------------------


def test_diffusion_policy_one_step_student(tmp_path):
    torch.set_num_threads(2)
    out = tmp_path / "dp1"
    config = _config(1, steps=20)
    result = distill(
        "zoo:diffusion-policy:tiny", out, config, "calib_data/diffusion-policy-tiny.npz"
    )
    assert result.written
    rep = result.report
    assert rep["teacher"]["calls_per_tick"] == {"encoder": 1, "denoiser": 16}
    assert rep["student"]["calls_per_tick"] == {"encoder": 1, "denoiser": 1}
    params = load_artifact(out).manifest.spec.program.params
    assert params["num_inference_steps"] == 1 and len(params["timesteps"]) == 1
    fid = rep["fidelity"]
    assert np.isfinite(fid["student"]["mean_abs"]) and "DDIM-16" in fid["scope"]


# --- bad input: one line, exit 2, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([REF, "--denoise-steps", "2", "--loop", "steps=2"], "already makes 2 calls"),
        ([REF, "--denoise-steps", "2", "--loop", "steps=1"], "already makes 1 calls"),
        ([REF, "--denoise-steps", "3"], "N must divide 10"),
        ([REF, "--denoise-steps", "0"], "--denoise-steps"),
        ([REF, "--denoise-steps", "1", "--loop", "scheduler=ddim"], "diffusion scheduler option"),
        ([REF, "--denoise-steps", "1", "--loop", "eta=0.5"], "diffusion scheduler option"),
        ([REF, "--denoise-steps", "1", "--loop", "clip_sample=true"], "diffusion scheduler"),
        ([REF, "--denoise-steps", "1", "--loop", "prediction_type=epsilon"], "flow matching"),
        ([REF, "--denoise-steps", "1", "--loop", "nope=1"], "not a parameter"),
        ([REF, "--denoise-steps", "1", "--program", "replan", "--loop", "recompute_prefix=true"],
         "recompute_prefix"),
        (["zoo:diffusion-policy:tiny", "--denoise-steps", "4", "--loop", "num_inference_steps=4"],
         "already makes 4 calls"),
        (["zoo:diffusion-policy:tiny", "--denoise-steps", "1", "--loop", "eta=0"],
         "not a parameter"),
    ],
)  # fmt: skip
def test_bad_input_one_line_exit_2(cli, tmp_path, args, needle):
    out = tmp_path / "s"
    r = cli("distill", *args, "--out", out, "--data", "synthetic", "--steps", "2")
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err and not out.exists() and not checkpoint_dir(out).exists()


def test_loop_override_sets_the_teacher(tmp_path):
    """``--loop steps=4``: a 4-step teacher, distilled to 2 (the student's grid halves it)."""
    from edgekit.distill.teacher import teacher_program

    src = load(REF)
    name, spec = teacher_program(src, _config(2, loop={"steps": 4}))
    assert name == "flow" and spec.params["steps"] == 4
