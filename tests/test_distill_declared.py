"""`edgekit distill FILE.py:factory --denoise-steps N`: step distillation of a declared tick's
denoise block (edgekit.distill.steps_declared, edgekit.distill.denoise_block).

The teacher is tests/fixtures/declared.py's policy with a 16-step DDIM (v-prediction) sampler:
normalise, history, encoder, denoise, unnormalise, chunk queue. Runs are tiny (random-init
networks, ~100 optimiser steps); the assertions are about behaviour: the student tick is the
teacher's with 2 explicit timesteps, training beats the untrained 2-step student, the report
is what the artifact gives, and bad requests are one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edgekit.artifacts import load_artifact
from edgekit.calib import synthesize_for_program
from edgekit.distill import DistillConfig, distill
from edgekit.distill import denoise_block as db
from edgekit.distill import steps_declared as sd
from edgekit.distill.api import checkpoint_dir
from edgekit.distill.train import TrainConfig, train
from edgekit.loader import load, load_factory
from edgekit.loop import TickContext
from edgekit.loop.blocks import TickProgram
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime, TorchRuntime
from tests.fixtures.declared import DDIM, tick

FIX = Path(__file__).parent / "fixtures" / "declared.py"
V = {**DDIM, "prediction_type": "v_prediction"}


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> tuple[Path, dict]:
    torch.set_num_threads(1)  # 2 threads on busy shared cores: slower, not faster
    out = tmp_path_factory.mktemp("declared") / "s2"
    # random-init networks: a higher LR than the default (1e-4, for trained denoisers)
    config = DistillConfig(denoise_steps=2, steps=100, lr=3e-3, latency_ticks=3, checkpoint_every=0)
    result = distill(f"{FIX}:policy16", out, config, "synthetic")
    assert result.written
    return out, result.report


def _holdout(program: Any, report: dict) -> list:
    """The observations `--data synthetic` made, and the held-out tail of them."""
    from edgekit.distill.api import SYNTHETIC_N

    obs = synthesize_for_program(program, n=SYNTHETIC_N, seed=0).observations()
    return obs[-report["data"]["holdout_observations"] :]


# --- the student artifact ----------------------------------------------------------------------


def test_student_tick_is_the_teachers_with_two_explicit_timesteps(student):
    out, _ = student
    art = load_artifact(out)
    assert art.manifest.stage == "distill" and art.manifest.spec.program.name == "tick"
    params = art.manifest.spec.program.params
    teacher = load(f"{FIX}:policy16").spec.program.params
    grid = [
        int(t)
        for t in build_program(load(f"{FIX}:policy16").spec.program).blocks[3].sampler.timesteps
    ]
    block = params["blocks"][3]
    assert block["num_inference_steps"] == 2 and params["num_inference_steps"] == 2
    assert block["timesteps"] == grid[::8] == [90, 42]  # every 8th of DDIM-16's grid
    assert block["scheduler"] == teacher["blocks"][3]["scheduler"]  # a DDIM teacher's own
    for i, b in enumerate(params["blocks"]):  # everything else is the teacher's tick
        if i != 3:
            assert b == teacher["blocks"][i]
    assert set(art.manifest.files) == {"encoder", "denoiser"}
    assert (out / "student.safetensors").is_file() and not checkpoint_dir(out).exists()
    assert art.manifest.checks["parity"]["passed"] is True
    program = build_program(art.manifest.spec.program)
    assert program.calls_per_tick() == {"encoder": 1, "denoiser": 2}
    ctx = TickContext(OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=1))
    program.reset(0)
    program.tick(ctx, program.sample_observation(np.random.default_rng(0)))
    assert ctx.calls == {"encoder": 1, "denoiser": 2}


def test_training_beats_the_untrained_two_step_student(student):
    _, rep = student
    fid = rep["fidelity"]
    assert fid["headline"] == {
        "metric": "action_range_mean_abs",
        "value": fid["student"]["mean_abs"],
    }
    assert "DDIM-16" in fid["scope"] and "clipped sample's range (2)" in fid["scope"]
    base = fid["undistilled_baseline"]
    assert fid["student"]["mean_abs"] < 0.5 * base["mean_abs"], (fid["student"], base)
    assert fid["student"]["rel_l2"] < base["rel_l2"]
    assert rep["training"]["loss_last"] < rep["training"]["loss_first"]
    assert rep["training"]["teacher_steps"] == 16 and rep["training"]["student_steps"] == 2
    assert rep["teacher"]["calls_per_tick"] == {"encoder": 1, "denoiser": 16}
    assert rep["student"]["calls_per_tick"] == {"encoder": 1, "denoiser": 2}
    assert rep["student"]["flops_per_tick"] < rep["teacher"]["flops_per_tick"]
    lat = rep["latency"]
    assert lat["measured"] is True and lat["teacher_p50_ms"] > 0 and lat["student_p50_ms"] > 0
    assert rep["gate"] == {"max_error": None, "metric": "action_range_mean_abs", "passed": True}


def test_reported_error_is_what_the_shipped_student_gives(student):
    """Recomputed independently: the teacher (torch) and the student's ONNX files, the denoise
    block's clean sample on every held-out tick (queue emptied so that each tick plans)."""
    out, rep = student
    src = load(f"{FIX}:policy16")
    art = load_artifact(out)

    def samples(params: dict, runtime: Any, holdout: list) -> np.ndarray:
        program = TickProgram(params)
        program.reset(0)
        got = program.tap(3)
        for obs in holdout:
            program.tick(TickContext(runtime), obs)
            program.blocks[5].reset()  # the chunk queue
        return np.stack([g["chunk"] for g in got])

    holdout = _holdout(build_program(src.spec.program), rep)
    ref = samples(src.spec.program.params, TorchRuntime(src.networks, src.spec, 2), holdout)
    ort = OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=1)
    got = samples(art.manifest.spec.program.params, ort, holdout)
    err = float(np.mean(np.abs(got - ref)) / 2)  # the sample is clipped to [-1, 1]
    assert err == pytest.approx(rep["fidelity"]["student"]["mean_abs"], abs=1e-4)


# --- the samplers, the grid, the conditioning --------------------------------------------------

SCHEDULERS = {
    "ddim-eps": DDIM,
    "ddim-trailing-v": {**V, "timestep_spacing": "trailing"},
    "ddim-linspace-sample": {**DDIM, "timestep_spacing": "linspace", "prediction_type": "sample"},
    "ddpm-v": {**V, "_class_name": "DDPMScheduler"},
    "dpmsolver++": {"_class_name": "DPMSolverMultistepScheduler", "num_train_timesteps": 100},
    "flow-shift3": {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
}


def _fake(x: torch.Tensor, t: float) -> torch.Tensor:
    ramp = torch.arange(x[0].numel(), dtype=torch.float32).reshape(x.shape[1:])
    return 0.3 * x + 0.1 * torch.sin(t / 100 + ramp)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_torch_samplers_are_the_ticks_and_the_grids_meet(name):
    """Teacher and student samplers in torch (what training rolls out) give the numpy
    scheduler's samples (what the tick runs); the teacher stands at the student's next
    timestep (DDIM) or sigma (flow) after every (K/N)-th step."""
    _, block = db.pick(tick(SCHEDULERS[name], 16), None, "test")
    ref = db.reference(block, "test")
    assert ref.sampler.kind in ("ddim", "flow-euler")
    for n in (1, 2, 4):
        stu = db.student(ref, n, "test")
        assert stu.num_inference_steps == n and len(stu.sampler.timesteps) == n
        for b in (ref, stu):
            sampler = db.torch_sampler(b)
            x = torch.randn((2, 8, 2), generator=torch.Generator().manual_seed(0))
            y = x.numpy().copy()
            for i, t in enumerate(b.sampler.timesteps):
                x = sampler.step(x, _fake(x, t), sampler.coefs[i])
                y = b.sampler.step(_fake(torch.from_numpy(y), t).numpy(), i, y, None)
            np.testing.assert_allclose(x.numpy(), y, rtol=1e-4, atol=1e-5)
        for j in range(1, n):
            if ref.sampler.kind == "flow-euler":
                got, want = stu.sampler.sigmas[j], ref.sampler.sigmas[j * (16 // n)]
                assert got == pytest.approx(want, rel=1e-6)
            else:
                landed = ref.sampler.prev_timesteps[j * (16 // n) - 1]
                assert (
                    stu.timesteps[j] == landed
                    and stu.sampler.alphas[j - 1][1] == ref.sampler.alphas[j * (16 // n) - 1][1]
                )
    if block.sampler.kind in ("ddpm", "dpmsolver++"):  # DDIM on the teacher's own timesteps
        assert ref.scheduler["_class_name"] == "DDIMScheduler"
        assert ref.timesteps == [int(t) for t in block.sampler.timesteps]


def test_conditioning_is_what_the_encoder_saw_on_each_tick():
    """Every tick plans: row i is the encoder's output on the normalised history at tick i."""
    src = load(f"{FIX}:policy16")
    params = db.effective(src.spec.program.params)
    rng = np.random.default_rng(0)
    obs = [{"state": rng.standard_normal(6).astype(np.float32)} for _ in range(6)]
    conds = sd.capture_conds(src, params, 3, obs, seed=0)
    assert set(conds) == {"cond"} and conds["cond"].shape == (6, 16)
    z = [(o["state"] - 0.5) / (2.0 + 1e-8) for o in obs]
    with torch.no_grad():
        for i in range(6):
            states = np.stack([z[max(i - 1, 0)], z[i]])[None].astype(np.float32)
            want = src.networks["encoder"](torch.from_numpy(states))[0]
            torch.testing.assert_close(conds["cond"][i], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ddpm-v", "flow-shift3"])
def test_ddpm_and_flow_teachers_distil(name):
    """A DDPM teacher trains against its deterministic DDIM counterpart, a flow teacher against
    itself; both students get closer to their teacher on held-out conditioning."""
    torch.set_num_threads(1)  # 2 threads on busy shared cores: slower, not faster
    src = load_factory(f"{FIX}:policy16", kwargs={"scheduler": SCHEDULERS[name]})
    pspec = src.spec.program
    obs = synthesize_for_program(build_program(pspec), n=48, seed=0).observations()
    config = DistillConfig(denoise_steps=2, steps=60, lr=3e-3, checkpoint_every=0)
    objective, student_src, _, _ = sd.setup(src, "tick", pspec, obs[:36], config, obs[36:])
    block = student_src.spec.program.params["blocks"][3]
    if name == "ddpm-v":
        assert block["scheduler"]["_class_name"] == "DDIMScheduler" and len(block["timesteps"]) == 2
    else:
        assert len(block["sigmas"]) == 2 and "timesteps" not in block
    before = objective.evaluate()
    tcfg = TrainConfig(steps=60, batch_size=32, lr=3e-3, checkpoint_every=0)
    from edgekit.distill import dist

    train(objective, tcfg, dist.init())
    after = objective.evaluate()
    assert before is not None and after is not None and after < 0.6 * before, (before, after)


def test_which_of_two_denoise_blocks():
    src = load(f"{FIX}:two_denoisers")
    pspec = src.spec.program
    assert "num_inference_steps" not in pspec.params  # the blocks make 8 and 4 calls
    obs = synthesize_for_program(build_program(pspec), n=4, seed=0).observations()
    for which in ("4", "chunk2"):
        config = DistillConfig(denoise_steps=2, denoise_block=which, steps=1)
        _, stu, how, extra = sd.setup(src, "tick", pspec, obs, config, [])
        blocks = stu.spec.program.params["blocks"]
        assert blocks[4]["timesteps"] == [75, 25] and blocks[3] == pspec.params["blocks"][3]
        assert extra["training"]["denoise_block"] == 4 and "blocks[4]" in how
        assert build_program(stu.spec.program).calls_per_tick() == {"encoder": 1, "denoiser": 10}


# --- bad requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([f"{FIX}:rnn", "--denoise-steps", "2"],
         "needs a tick with a denoise block (or the zoo's diffusion-sampler or vla-flow)"),
        (["zoo:vla:tiny", "--denoise-steps", "2"],
         "needs a tick with a denoise block (or the zoo's diffusion-sampler or vla-flow)"),
        ([f"{FIX}:two_denoisers", "--denoise-steps", "2"], "has 2 denoise blocks"),
        ([f"{FIX}:two_denoisers", "--denoise-steps", "2", "--denoise-block", "chunk3"],
         "denoise blocks are 3 (result 'chunk'), 4 (result 'chunk2')"),
        ([f"{FIX}:policy", "--denoise-steps", "4"], "already makes 4 calls"),
        ([f"{FIX}:policy16", "--denoise-block", "3", "--width", "0.5"], "--denoise-block picks"),
        (["zoo:diffusion-policy:tiny", "--denoise-steps", "2", "--denoise-block", "1"],
         "--denoise-block picks a denoise block of a declared tick"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_exit_2(cli, tmp_path, args, needle):
    out = tmp_path / "s"
    r = cli("distill", *args, "--out", out, "--data", "synthetic", "--steps", "2")
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err and not out.exists() and not checkpoint_dir(out).exists()


def test_max_error_gate_fails_with_exit_1_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "s"
    r = cli("distill", f"{FIX}:policy16", "--out", out, "--denoise-steps", "1", "--data",
            "synthetic", "--steps", "2", "--latency-ticks", "0", "--max-error", "1e-9")  # fmt: skip
    assert r.code == 1 and "exceeds --max-error" in r.err, (r.code, r.err)
    assert "action_range_mean_abs" in r.err and not out.exists()
