"""Declared ticks (edgekit.loop.blocks): a user's policy with its real control loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import BadInputError
from edgekit.loader import load
from edgekit.loop import TickContext
from edgekit.loop.blocks import TickProgram, declare_tick
from edgekit.models import build_program
from edgekit.runtimes import TorchRuntime

FIX = Path(__file__).parent / "fixtures" / "declared.py"


def program_and_runtime(factory: str = "policy"):
    src = load(f"{FIX}:{factory}")
    return build_program(src.spec.program), TorchRuntime(src.networks, src.spec, 1), src


def test_normalize_and_unnormalize_are_lerobots_formulas():
    decl = {
        "observation": [{"name": "x", "shape": [3]}],
        "blocks": [
            {"block": "normalize", "input": "x", "output": "z", "mean": [1, 2, 3],
             "std": [2, 2, 4]},
            {"block": "normalize", "input": "x", "output": "m", "mode": "min_max",
             "min": [0, 0, 0], "max": [4, 8, 16]},
            {"block": "unnormalize", "input": "m", "output": "back", "mode": "min_max",
             "min": [0, 0, 0], "max": [4, 8, 16]},
        ],
        "outputs": ["z", "m", "back"],
    }  # fmt: skip
    prog = TickProgram(decl)
    x = np.array([3.0, 4.0, 5.0], np.float32)
    out = prog.tick(TickContext(runtime=None), {"x": x})  # type: ignore[arg-type]
    np.testing.assert_allclose(out["z"], (x - [1, 2, 3]) / (np.array([2, 2, 4]) + 1e-8), 1e-6)
    np.testing.assert_allclose(out["m"], x / [4, 8, 16] * 2 - 1, 1e-6)
    np.testing.assert_allclose(out["back"], x, 1e-5)


def test_chunk_queue_plans_every_n_ticks_and_history_sees_every_tick():
    prog, rt, _ = program_and_runtime()
    assert prog.calls_per_tick() == {"encoder": 1, "denoiser": 4}
    prog.reset(3)
    rng = np.random.default_rng(0)
    calls, actions = [], []
    plans = []
    for _ in range(9):
        ctx = TickContext(rt)
        obs = {"state": rng.standard_normal(6).astype(np.float32)}
        out = prog.tick(ctx, obs)
        calls.append(dict(ctx.calls))
        actions.append(out["action"])
        hist = prog.blocks[1]._buf  # the history block's buffer: one entry per tick
        plans.append(len(hist))
    assert [c.get("denoiser", 0) for c in calls] == [4, 0, 0, 0, 4, 0, 0, 0, 4]
    assert [c.get("encoder", 0) for c in calls] == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert all(a.shape == (2,) for a in actions)
    assert not np.allclose(actions[0], actions[1])  # successive rows of one chunk


def test_declared_denoise_matches_a_diffusers_sampling_loop():
    """The tick (normalise, history, encoder, 4 DDIM steps, unnormalise) against the same
    networks driven by diffusers' own DDIMScheduler from the same initial noise."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from tests.fixtures.declared import DDIM

    prog, rt, src = program_and_runtime()
    prog.reset(7)
    state = np.linspace(-1, 1, 6).astype(np.float32)
    out = prog.tick(TickContext(rt), {"state": state})

    sched = diffusers.DDIMScheduler.from_config(DDIM)
    sched.set_timesteps(4)
    z = (state - 0.5) / (2.0 + 1e-8)
    states = torch.from_numpy(np.stack([z, z])[None].astype(np.float32))
    x = torch.from_numpy(np.random.default_rng(7).standard_normal((1, 8, 2)).astype(np.float32))
    with torch.inference_mode():
        cond = src.networks["encoder"](states)
        for t in sched.timesteps:
            eps = src.networks["denoiser"](x, t.reshape(1).float(), cond)
            x = sched.step(eps, t, x).prev_sample
    lo, hi = np.array([-2.0, -1.0]), np.array([2.0, 1.0])
    chunk = (x[0].numpy() + 1) / 2 * (hi - lo + 1e-8) + lo
    np.testing.assert_allclose(out["action"], chunk[1], atol=1e-5)  # execute from row 1


def test_recurrent_state_is_fed_back():
    torch = pytest.importorskip("torch")
    prog, rt, src = program_and_runtime("rnn")
    prog.reset(0)
    obs = [np.full(6, v, np.float32) for v in (0.1, -0.2, 0.3)]
    h = torch.zeros(1, 8)
    for o in obs:
        out = prog.tick(TickContext(rt), {"state": o})
        with torch.inference_mode():
            a, h = src.networks["rnn"](torch.from_numpy(o[None]), h)
        np.testing.assert_allclose(out["action"], a[0].numpy(), atol=1e-6)
    prog.reset(0)  # a new episode starts from zeros again
    first = prog.tick(TickContext(rt), {"state": obs[0]})
    with torch.inference_mode():
        a0, _ = src.networks["rnn"](torch.from_numpy(obs[0][None]), torch.zeros(1, 8))
    np.testing.assert_allclose(first["action"], a0[0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        ("unknown_block", "blocks[0].block: unknown block 'normalise'"),
        ("wrong_input", "'conditioning' is not an input of network 'denoiser'"),
        ("unread_name", "reads 'state_history', which no observation or earlier block makes"),
        ("bad_scheduler", "thresholding"),
        ("plan_only_output", "tick.outputs: 'cond' is made only on planning ticks"),
    ],
)
def test_bad_declarations_are_one_line_exit_2(cli, tmp_path, factory, needle):
    out = tmp_path / "a"
    r = cli("export", f"{FIX}:{factory}", "--out", out)
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not out.exists()


def test_declaration_errors_name_the_key():
    with pytest.raises(BadInputError, match=r"tick.blocks\[0\].length: unknown key"):
        declare_tick({"observation": [{"name": "x", "shape": [1]}],
                      "blocks": [{"block": "normalize", "input": "x", "mean": 0, "std": 1,
                                  "length": 3}], "outputs": ["x"]})  # fmt: skip
    with pytest.raises(BadInputError, match="outputs: 'y' is made by no block"):
        declare_tick({"observation": [{"name": "x", "shape": [1]}],
                      "blocks": [{"block": "normalize", "input": "x", "mean": 0, "std": 1}],
                      "outputs": ["y"]})  # fmt: skip


def test_the_artifact_carries_the_tick_through_bench_and_quantize(cli, tmp_path):
    art = tmp_path / "fp32"
    r = cli("export", f"{FIX}:policy", "--out", art)
    assert r.code == 0, r.err
    manifest = json.loads((art / "edgekit.json").read_text())
    assert manifest["model"]["program"]["name"] == "tick"
    assert sorted(manifest["files"]) == ["denoiser", "encoder"]
    rep = tmp_path / "b.json"
    r = cli("bench", art, "--ticks", "8", "--warmup", "0", "--budget-ms", "1000", "--json", rep)
    assert r.code == 0, r.err
    stages = {s["name"]: s for s in json.loads(rep.read_text())["stages"]}
    assert stages["denoiser"]["calls"] == 4 and stages["encoder"]["calls"] == 1
    assert {"normalize", "history", "scheduler", "queue"} <= set(stages)
    r = cli("bench", art, "--ticks", "4", "--warmup", "0", "--budget-ms", "1000",
            "--loop", "num_inference_steps=2", "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    stages = {s["name"]: s for s in json.loads(rep.read_text())["stages"]}
    assert stages["denoiser"]["calls"] == 2
    r = cli("bench", art, "--target", "jetson-orin-nx", "--json", rep)  # a planning tick
    assert r.code == 0, r.err
    est = {c["network"]: c["calls"] for c in json.loads(rep.read_text())["estimate"]["calls"]}
    assert est == {"encoder": 1, "denoiser": 4}
    q = tmp_path / "int8"
    r = cli("quantize", art, "--calib", "synthetic", "--out", q, "--latency-ticks", "0")
    assert r.code == 0, r.err
    qm = json.loads((q / "edgekit.json").read_text())
    assert qm["model"]["program"]["name"] == "tick"
    assert qm["checks"]["quantize"]["fidelity"]["worst_rel_l2"] < 0.2


def test_an_unexportable_forward_says_what_to_do_and_keeps_its_log_off_stderr(cli, tmp_path):
    out = tmp_path / "a"
    r = cli("export", f"{FIX}:sampler_in_forward", "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "network 'model'" in r.err and "data-dependent control flow" in r.err
    assert "declare the loop as a tick" in r.err
    log = Path(r.err.rsplit("full log: ", 1)[1].rstrip(")\n"))
    assert "Traceback" in log.read_text()
    log.unlink()
    assert not out.exists()


def test_a_declared_tick_drives_a_simulated_task(cli, tmp_path):
    pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    rep = tmp_path / "e.json"
    r = cli("eval", f"{FIX}:reacher_policy", "--episodes", "2", "--teacher", "none",
            "--json", rep)  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(rep.read_text())
    assert report["task"]["commands"] == "torque"
    assert len(report["candidate"]["per_episode"]) == 2
    assert all(e["ticks"] == e["steps"] for e in report["candidate"]["per_episode"])
    r = cli("eval", f"{FIX}:reacher_policy_wrong_size", "--episodes", "1", "--teacher", "none")
    assert r.code == 2 and "observation 'state' has shape [11]" in r.err, r.err


def test_denoise_block_on_an_explicit_grid():
    """A step student's block samples on its own timesteps (DDIM) or sigmas (flow Euler); a
    grid that does not fit its step count is one line naming it; ``tap`` keeps the block's
    own result although a later block rescales it in place."""
    from tests.fixtures.declared import tick

    params = tick(None, 2)
    params["blocks"][3]["timesteps"] = [90, 42]
    prog = TickProgram(params)
    assert prog.calls_per_tick() == {"encoder": 1, "denoiser": 2}
    assert prog.blocks[3].sampler.timesteps == [90.0, 42.0]
    with pytest.raises(BadInputError, match=r"timesteps=\[90, 42\] is not supported"):
        TickProgram({**params, "num_inference_steps": 4})  # --loop num_inference_steps=4
    flow = tick({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}, 2)
    flow["blocks"][3]["sigmas"] = [1.0, 0.5]
    assert TickProgram(flow).blocks[3].sampler.timesteps == [1000.0, 750.0]
    with pytest.raises(BadInputError, match="explicit sigmas are not supported by edgekit's ddim"):
        TickProgram({**params, "blocks": [*params["blocks"][:3], {**params["blocks"][3],
                     "sigmas": [1.0, 0.5]}, *params["blocks"][4:]]})  # fmt: skip
    src = load(f"{FIX}:policy")
    prog = build_program(src.spec.program)
    taps = prog.tap(3)
    out = prog.tick(
        TickContext(TorchRuntime(src.networks, src.spec, 1)), {"state": np.zeros(6, np.float32)}
    )
    assert len(taps) == 1 and np.abs(taps[0]["chunk"]).max() <= 1.0  # clipped, before unnormalize
    lo, hi = np.array([-2.0, -1.0]), np.array([2.0, 1.0])
    np.testing.assert_allclose(
        out["action"], (taps[0]["chunk"][1] + 1) / 2 * (hi - lo) + lo, atol=1e-5
    )


def test_a_width_student_of_a_declared_tick_keeps_the_tick(cli, tmp_path):
    out = tmp_path / "w"
    r = cli("distill", f"{FIX}:scalable", "--width", "0.5", "--data", "synthetic", "--steps",
            "5", "--latency-ticks", "0", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    m = json.loads((out / "edgekit.json").read_text())
    assert m["model"]["program"]["name"] == "tick"
    assert m["checks"]["distill"]["fidelity"]["rows"]
    prog = build_program(load(str(out)).spec.program)
    assert prog.calls_per_tick() == {"encoder": 1, "denoiser": 4}


def test_a_dpm_solver_config_as_diffusers_writes_it_survives_the_manifest(cli, tmp_path):
    """-Infinity has no strict-JSON form: the manifest stores null, which reads back as it."""
    pytest.importorskip("diffusers")
    from edgekit.loader import load
    from edgekit.models import build_program

    art = tmp_path / "art"
    r = cli("export", f"{FIX}:dpm_policy", "--out", art)
    assert r.code == 0, r.err
    assert '"lambda_min_clipped": null' in (art / "edgekit.json").read_text()
    r = cli("bench", art, "--ticks", "2", "--warmup", "0", "--budget-ms", "60000")
    assert r.code == 0, r.err
    # the calibration recipe (calib_data/README.md) builds the program from the stored copy
    assert build_program(load(str(art)).spec.program).observation_spec()


def test_an_artifact_made_from_a_factory_names_its_teacher_and_runs_from_anywhere(
    cli, tmp_path, monkeypatch
):
    """The manifest records the factory's absolute path; importing it back (teacher, torch
    twin) is code an artifact names: --allow-plugin, or --teacher naming it."""
    pytest.importorskip("gymnasium")
    import shutil

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    shutil.copy(FIX, here / "declared.py")
    monkeypatch.chdir(here)
    r = cli("export", "declared.py:reacher_policy", "--out", tmp_path / "art")
    assert r.code == 0, r.err
    factory = f"{(here / 'declared.py').resolve()}:reacher_policy"
    assert json.loads((tmp_path / "art" / "edgekit.json").read_text())["source"]["ref"] == factory
    monkeypatch.chdir(elsewhere)
    quick = ("--ticks", "2", "--warmup", "0", "--budget-ms", "60000")
    r = cli("bench", tmp_path / "art", "--runtime", "torch", *quick)
    assert r.code == 2 and "--allow-plugin" in r.err and factory in r.err, r.err
    r = cli("bench", tmp_path / "art", "--runtime", "torch", "--allow-plugin", *quick)
    assert r.code == 0, r.err

    rep = tmp_path / "e.json"
    args = ("eval", tmp_path / "art", "--episodes", "1", "--json", rep)
    r = cli(*args)  # --teacher auto: no teacher, and the note says why and what to pass
    assert r.code == 0, r.err
    assert f"note: no teacher: {tmp_path / 'art'} was made from the factory {factory}" in r.out
    assert json.loads(rep.read_text())["notes"] == [r.out.split("note: ")[1].split("\n")[0]]
    r = cli(*args, "--min-success-ratio", "0.5")
    assert r.code == 2 and f"needs a teacher: {tmp_path / 'art'} was made from the factory" in r.err
    assert f"--teacher {factory}" in r.err, r.err
    r = cli(*args, "--min-success-ratio", "0.5", "--teacher", factory)
    assert r.code in (0, 1), r.err  # the random MLP against itself
    assert json.loads(rep.read_text())["teacher"]["ref"] == factory
