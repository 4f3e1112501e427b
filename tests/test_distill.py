"""`edgekit distill`: width/depth students, step distillation, resume, gates, bad input.

Runs are tiny (tens of optimiser steps on tiny presets); the assertions are about behaviour
(the student is trained, deterministic, drops into the same loop, is refused when wrong), not
about how good a CPU-minute student gets: that is benchmarks/distill_compare.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekit.artifacts import load_artifact
from edgekit.distill import DistillConfig, distill
from edgekit.distill.api import checkpoint_dir
from edgekit.distill.steps import (
    ddim_step,
    run_chunks,
    sampler_program,
    step_coefs,
    student_params,
)
from edgekit.errors import BadInputError
from edgekit.loader import load
from edgekit.runtimes import TorchRuntime
from edgekit.zoo import ZOO

FIX = Path(__file__).parent / "fixtures" / "user_models.py"


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "student.safetensors"))


# --- the student sampler ----------------------------------------------------------------------


def test_student_grid_is_every_kth_teacher_step_and_ends_clean():
    params = load("zoo:diffusion-policy:tiny").spec.program.params
    teacher = sampler_program({**params, "num_inference_steps": 16})
    for n in (1, 2, 4):
        sp = student_params(params, n, 16)
        assert sp["timesteps"] == teacher.timesteps[:: 16 // n]
        program = sampler_program(sp)
        assert program.calls_per_tick() == {"encoder": 1, "denoiser": n}
        # the last step goes straight to the clean sample: x' = x0, no noise term
        assert program.coefs[-1][2] == 1.0 and program.coefs[-1][3] == 0.0


def test_torch_step_matches_the_program_step():
    params = load("zoo:diffusion-policy:tiny").spec.program.params
    for sp in ({**params}, student_params(params, 2, 16)):
        program = sampler_program(sp)
        _, coefs = step_coefs(program)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 16, 7)).astype(np.float32)
        eps = rng.standard_normal((3, 16, 7)).astype(np.float32)
        for i in range(len(program.timesteps)):
            want = program.step(x, eps, i)
            got, _ = ddim_step(torch.from_numpy(x), torch.from_numpy(eps), coefs[i], "epsilon")
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


def test_bad_explicit_timesteps_are_refused():
    params = load("zoo:diffusion-policy:tiny").spec.program.params
    with pytest.raises(ValueError, match="descending"):
        sampler_program({**params, "num_inference_steps": 2, "timesteps": [10, 50]})


# --- step distillation end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def step_student(tmp_path_factory) -> tuple[Path, dict]:
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("dp") / "dp2"
    # a random-init teacher is far from its own 2-step grid: a higher LR than the default
    # (1e-4, for fine-tuning trained denoisers) closes the gap in few steps
    config = DistillConfig(denoise_steps=2, steps=120, lr=1e-3, latency_ticks=3, checkpoint_every=0)
    result = distill(
        "zoo:diffusion-policy:tiny", out, config, "calib_data/diffusion-policy-tiny.npz"
    )
    return out, result.report


def test_step_student_beats_the_same_grid_without_training(step_student):
    _, rep = step_student
    fid = rep["fidelity"]
    assert fid["headline"]["metric"] == "action_range_mean_abs"
    assert fid["student"]["mean_abs"] < 0.9 * fid["undistilled_baseline"]["mean_abs"]
    assert fid["student"]["rel_l2"] < fid["undistilled_baseline"]["rel_l2"]
    assert rep["training"]["loss_last"] < rep["training"]["loss_first"]
    assert rep["teacher"]["calls_per_tick"] == {"encoder": 1, "denoiser": 16}
    assert rep["student"]["calls_per_tick"] == {"encoder": 1, "denoiser": 2}
    lat = rep["latency"]
    assert lat["measured"] is True and lat["teacher_p50_ms"] > 0 and lat["student_p50_ms"] > 0


def test_step_student_artifact_runs_its_own_program(step_student, bench_json):
    out, _ = step_student
    art = load_artifact(out)
    assert art.manifest.stage == "distill"
    assert art.manifest.spec.program.params["num_inference_steps"] == 2
    assert set(art.manifest.files) == {"encoder", "denoiser"}
    assert (out / "student.safetensors").is_file()
    assert art.manifest.checks["parity"]["passed"] is True
    assert not checkpoint_dir(out).exists()
    report = bench_json(out)
    calls = {s["name"]: s["calls"] for s in report["stages"]}
    assert calls["denoiser"] == 2 and calls["encoder"] == 1


def test_step_student_fidelity_is_reproducible_from_the_artifact(step_student):
    """The reported error is what the shipped ONNX files give (recomputed independently)."""
    from edgekit.distill.steps import action_error, teacher_params
    from edgekit.runtimes import OrtRuntime

    out, rep = step_student
    src = load("zoo:diffusion-policy:tiny")
    art = load_artifact(out)
    student_rt = OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=1)
    teacher_rt = TorchRuntime(src.networks, src.spec, threads=1)
    from edgekit.calib import load_calibration
    from edgekit.models import build_program

    obs = load_calibration(
        Path("calib_data/diffusion-policy-tiny.npz"),
        build_program(src.spec.program).observation_spec(),
    ).observations()
    holdout = obs[-rep["data"]["holdout_observations"] :]
    params = dict(src.spec.program.params)
    ref = run_chunks(teacher_params(params, 16), teacher_rt, holdout, 0)
    got = run_chunks(dict(art.manifest.spec.program.params), student_rt, holdout, 0)
    err = action_error(got, ref, params)
    assert err["mean_abs"] == pytest.approx(rep["fidelity"]["student"]["mean_abs"], abs=1e-4)


# --- width/depth students --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ZOO.names())
def test_width_depth_student_for_every_kind(cli, tmp_path, kind):
    preset = "tiny"
    out = tmp_path / "student"
    r = cli(
        "distill", f"zoo:{kind}:{preset}", "--out", out, "--width", "0.5", "--depth", "0.5",
        "--data", f"calib_data/{kind}-tiny.npz", "--steps", "15", "--latency-ticks", "0",
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert r.code == 0, r.err
    rep = _report(tmp_path / "r.json")
    assert rep["student"]["params"] < rep["teacher"]["params"]
    assert rep["student"]["flops_per_tick"] < rep["teacher"]["flops_per_tick"]
    assert rep["fidelity"]["rows"] and rep["fidelity"]["headline"]["metric"] == "rel_l2"
    assert np.isfinite(rep["fidelity"]["headline"]["value"])
    art = load_artifact(out)
    teacher = load(f"zoo:{kind}:{preset}")
    assert [n.to_dict() for n in art.manifest.spec.networks] == [
        n.to_dict() for n in teacher.spec.networks
    ]
    assert "whole-tick fidelity" in r.out and "verdict: no gate set" in r.out


def test_training_makes_the_student_closer(tmp_path):
    """Same student, same data: 150 steps land far closer to the teacher than 1 step."""
    errs = []
    for steps in (1, 150):
        config = DistillConfig(width=0.5, steps=steps, latency_ticks=0, checkpoint_every=0)
        res = distill(
            "zoo:humanoid:tiny", tmp_path / f"s{steps}", config, "calib_data/humanoid-tiny.npz"
        )
        errs.append(res.error)
        assert res.report["training"]["feature_hints"]["policy"].startswith("on")
    assert errs[1] < 0.5 * errs[0]


def test_same_seed_same_student_other_seed_other_student(tmp_path):
    def run(name: str, seed: int) -> dict[str, torch.Tensor]:
        config = DistillConfig(width=0.5, steps=12, seed=seed, latency_ticks=0)
        distill("zoo:omni-body:tiny", tmp_path / name, config, "synthetic")
        return _weights(tmp_path / name)

    a, b, c = run("a", 0), run("b", 0), run("c", 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_user_factory_student_takes_width_and_depth(cli, tmp_path):
    r = cli(
        "distill", f"{FIX}:scalable", "--out", tmp_path / "s", "--width", "0.5",
        "--depth", "0.5", "--data", "synthetic", "--steps", "20", "--latency-ticks", "0",
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert r.code == 0, r.err
    rep = _report(tmp_path / "r.json")
    assert rep["student"]["how"].endswith("(width=0.5, depth=0.5)")
    assert rep["student"]["params"] < rep["teacher"]["params"] / 3


def test_explicit_student_reference(cli, tmp_path):
    r = cli(
        "distill", "zoo:humanoid:tiny-hover", "--out", tmp_path / "s", "--student",
        "zoo:humanoid:tiny-hover", "--data", "synthetic", "--steps", "5", "--latency-ticks", "0",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "student: given: zoo:humanoid:tiny-hover" in r.out


# --- checkpoints and resume ------------------------------------------------------------------


class Interrupt(Exception):
    pass


def test_interrupted_run_leaves_its_checkpoint_and_resume_matches(tmp_path):
    config = DistillConfig(width=0.5, steps=30, checkpoint_every=10, latency_ticks=0)
    data = "calib_data/humanoid-tiny.npz"
    distill("zoo:humanoid:tiny", tmp_path / "full", config, data)

    def stop_at_25(phase: str, done: int, total: int, metrics: dict) -> None:
        if done == 25:
            raise Interrupt

    out = tmp_path / "cut"
    with pytest.raises(Interrupt):
        distill("zoo:humanoid:tiny", out, config, data, progress=stop_at_25)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.ckpt", "full"]
    meta = json.loads((checkpoint_dir(out) / "state.json").read_text())
    assert meta["step"] == 20
    res = distill("zoo:humanoid:tiny", out, config, data, resume=True)
    assert res.report["training"]["resumed_from"] == 20
    assert not checkpoint_dir(out).exists()
    full, cut = _weights(tmp_path / "full"), _weights(out)
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_resume_refuses_a_checkpoint_of_other_settings(cli, tmp_path):
    config = DistillConfig(width=0.5, steps=20, checkpoint_every=10, latency_ticks=0)

    def stop(phase: str, done: int, total: int, metrics: dict) -> None:
        if done == 15:
            raise Interrupt

    out = tmp_path / "s"
    with pytest.raises(Interrupt):
        distill("zoo:humanoid:tiny", out, config, "synthetic", progress=stop)
    r = cli(
        "distill", "zoo:humanoid:tiny", "--out", out, "--width", "0.5", "--lr", "0.01",
        "--data", "synthetic", "--steps", "20", "--resume",
    )  # fmt: skip
    assert r.code == 2 and "different settings" in r.err and not out.exists()


# --- torch.distributed -----------------------------------------------------------------------


def test_torchrun_two_cpu_processes_match_one(tmp_path):
    import os
    import subprocess
    import sys

    args = [
        "-m", "edgekit", "distill", "zoo:humanoid:tiny", "--width", "0.5", "--data",
        "calib_data/humanoid-tiny.npz", "--steps", "12", "--batch-size", "8",
        "--latency-ticks", "0",
    ]  # fmt: skip
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, *args, "--out", str(tmp_path / "one")], env=env, capture_output=True
    )
    assert one.returncode == 0, one.stderr.decode()[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         *args, "--out", str(tmp_path / "two"), "--json", str(tmp_path / "two.json")],
        env=env, capture_output=True,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr.decode()[-2000:]
    rep = _report(tmp_path / "two.json")
    assert rep["training"]["processes"] == 2 and rep["training"]["backend"] == "gloo"
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:  # same maths, different float summation order across processes
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=2e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two", "two.json"]


# --- gates and bad input ---------------------------------------------------------------------


def test_gate_fails_with_exit_1_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "s"
    r = cli(
        "distill", "zoo:humanoid:tiny", "--out", out, "--width", "0.5", "--data", "synthetic",
        "--steps", "3", "--latency-ticks", "0", "--max-error", "1e-9",
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert r.code == 1 and "exceeds --max-error" in r.err
    assert "verdict: FAIL" in r.out
    assert not out.exists() and not checkpoint_dir(out).exists()
    assert _report(tmp_path / "r.json")["gate"]["passed"] is False


def _npz(tmp_path: Path, **arrays: np.ndarray) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["zoo:nope", "--width", "0.5"], "unknown zoo model"),
        (["zoo:humanoid:tiny"], "nothing to distil"),
        (["zoo:humanoid:tiny", "--width", "0"], "--width 0.0: must be > 0"),
        (["zoo:humanoid:tiny", "--width", "1.5"], "at most the teacher's size"),
        (["zoo:vla:tiny", "--denoise-steps", "2"], "needs a tick with a denoise block"),
        (["zoo:diffusion-policy:tiny", "--denoise-steps", "8"], "1 to 4 denoiser calls"),
        (["zoo:diffusion-policy:tiny", "--denoise-steps", "2", "--width", "0.5"], "as --student"),
        (["zoo:humanoid:tiny", "--student", "zoo:vla:tiny"], "the teacher"),
        (["zoo:humanoid:tiny", "--width", "0.5", "--program", "nope"], "has programs"),
        ([f"{FIX}:with_specs", "--width", "0.5"], "takes no width, depth"),
        (["zoo:humanoid:tiny", "--width", "0.5", "--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_options_one_line_exit_2(cli, tmp_path, args, needle):
    out = tmp_path / "s"
    r = cli("distill", *args, "--out", out, "--data", "synthetic", "--steps", "2")
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err and not out.exists()


def test_onnx_teacher_is_refused(cli, tmp_path, humanoid_artifact):
    r = cli("distill", humanoid_artifact, "--out", tmp_path / "s", "--width", "0.5",
            "--data", "synthetic")  # fmt: skip
    assert r.code == 2 and "has ONNX networks only" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_bad_data_one_line_exit_2(cli, tmp_path):
    base = ["distill", "zoo:humanoid:tiny", "--out", tmp_path / "s", "--width", "0.5"]
    r = cli(*base)
    assert r.code == 2 and "--data is required" in r.err
    obs = np.zeros((6, 84), np.float32)
    obs[2, 0] = np.nan
    r = cli(*base, "--data", _npz(tmp_path, proprio=obs))
    assert r.code == 2 and "bad.npz" in r.err and "NaN" in r.err.replace("nan", "NaN")
    r = cli(*base, "--data", _npz(tmp_path, wrong=np.zeros((6, 3), np.float32)))
    assert r.code == 2 and "bad.npz" in r.err
    r = cli(*base, "--data", _npz(tmp_path, proprio=np.zeros((0, 84), np.float32)))
    assert r.code == 2 and "bad.npz" in r.err
    assert not (tmp_path / "s").exists() and not checkpoint_dir(tmp_path / "s").exists()


def test_teacher_targets_land_where_the_student_steps_land():
    """Each target is the teacher's state at the student's next timestep; the last is the
    teacher's chunk, also when K is not a multiple of N (DDPM-100 teacher, 3 calls)."""
    from edgekit.distill.steps import StepObjective, teacher_params

    src = load("zoo:diffusion-policy:tiny")
    params = dict(src.spec.program.params)
    for k, n in ((16, 4), (100, 3)):
        obj = StepObjective(src.networks["denoiser"], torch.zeros(2, 50), params, n, k)
        grid = sampler_program(teacher_params(params, k)).timesteps
        student = sampler_program(student_params(params, n, k)).timesteps
        x = torch.randn(2, 16, 7, generator=torch.Generator().manual_seed(0))
        cond = torch.randn(2, 50, generator=torch.Generator().manual_seed(1))
        targets = obj.teacher_states(x, cond)
        assert len(targets) == n
        full, y = [], x
        _, coefs = step_coefs(sampler_program(teacher_params(params, k)))
        with torch.no_grad():
            for i, t in enumerate(grid):
                eps = src.networks["denoiser"](y, torch.full((2,), float(t)), cond)
                y, _ = ddim_step(y, eps, coefs[i], "epsilon")
                full.append(y)
        for j in range(1, n):  # the state reached after teacher step i sits at grid[i]
            i = grid.index(student[j])
            torch.testing.assert_close(targets[j - 1], full[i - 1])
        torch.testing.assert_close(targets[-1], full[-1])


def test_sample_prediction_step_matches_the_program_and_diffusers_ddim():
    """A one-step student predicts the clean chunk: torch and the numpy program agree, and
    the update is diffusers' DDIM for prediction_type="sample" (noise derived before the clip)."""
    params = load("zoo:diffusion-policy:tiny").spec.program.params
    sp = student_params(params, 2, 16, "sample")
    assert sp["prediction_type"] == "sample"
    program = sampler_program(sp)
    _, coefs = step_coefs(program)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 16, 7)).astype(np.float32)
    x0 = 1.5 * rng.standard_normal((3, 16, 7)).astype(np.float32)  # some outside [-1, 1]
    for i in range(2):
        want = program.step(x, x0, i)
        got, _ = ddim_step(torch.from_numpy(x), torch.from_numpy(x0), coefs[i], "sample")
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
        inv_sa, ratio, c_x0, c_eps = (float(c) for c in program.coefs[i][:4])
        sa, sb = 1 / inv_sa, ratio / inv_sa
        eps = (x - sa * x0) / sb
        np.testing.assert_allclose(want, c_x0 * np.clip(x0, -1, 1) + c_eps * eps, atol=1e-5)
    with pytest.raises(ValueError, match="prediction_type"):
        sampler_program({**params, "prediction_type": "v_prediction"})


def test_teacher_pool_holds_the_teachers_own_rollouts_and_is_reproducible():
    from edgekit.distill.rollout import TARGET
    from edgekit.distill.steps import StepObjective

    src = load("zoo:diffusion-policy:tiny")
    params = dict(src.spec.program.params)
    conds = torch.randn(5, 50, generator=torch.Generator().manual_seed(3))

    def objective(pool: int) -> StepObjective:
        return StepObjective(src.networks["denoiser"], conds, params, 2, 16, pool=pool,
                             pool_seed=7)  # fmt: skip

    a, b = objective(12), objective(12)
    batch = a.sample(torch.Generator().manual_seed(0), 6)
    assert {f"{TARGET}0", f"{TARGET}1"} <= set(batch) and batch["x"].shape[0] == 6
    fresh = a.teacher_states(batch["x"], a.conditioning(batch))
    for j, want in enumerate(fresh):  # the stored targets are the teacher's states
        torch.testing.assert_close(batch[f"{TARGET}{j}"], want)
    again = b.sample(torch.Generator().manual_seed(0), 6)  # a resumed run: the same pool
    for k, v in batch.items():
        torch.testing.assert_close(again[k], v)
    # the loss on a pooled batch is the loss on the same rows with fresh teacher rollouts
    plain = {k: v for k, v in batch.items() if not k.startswith(TARGET)}
    torch.testing.assert_close(a(batch), a(plain))
    with pytest.raises(BadInputError, match=r"--teacher-pool 100000000: .* use at most"):
        objective(100_000_000)


def test_teacher_pool_needs_denoise_steps(cli, tmp_path):
    r = cli("distill", "zoo:humanoid:tiny", "--width", "0.5", "--teacher-pool", "64",
            "--data", "synthetic", "--out", tmp_path / "s")  # fmt: skip
    assert r.code == 2 and "--teacher-pool" in r.err and len(r.err.strip().splitlines()) == 1
