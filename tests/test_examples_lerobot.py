"""examples/lerobot_diffusion: LeRobot's own DiffusionPolicy as an edgekit factory.

Runs only where ``lerobot`` (>= 0.4, the processor-pipeline layout) imports: LeRobot's PyPI
release does not install alongside the CPU torch this project pins, so here it is skipped.

The declared tick is checked against LeRobot itself: the same observations go through
LeRobot's ``preprocessor -> policy.select_action -> postprocessor`` and through the exported
tick, with the same noise. LeRobot draws its noise with ``torch.randn`` (the initial sample in
``DiffusionModel.conditional_sample``; DDPM's variance noise in diffusers' ``randn_tensor``);
edgekit's denoise block draws ``rng.standard_normal((1, *shape))`` (and DDPM's variance noise
of the sample's shape) from the program's ``numpy`` RNG, seeded by ``reset(seed)``, in the same
order. So, in this test only, ``torch.randn`` is replaced by draws from a ``numpy`` generator
seeded the same way.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lerobot")

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "lerobot_diffusion" / "policy.py"
# PushT's features and stats, LeRobot's resnet18 encoder, a small U-Net, 10 sampler steps
SMALL = {"down_dims": (32, 64), "diffusion_step_embed_dim": 16, "num_inference_steps": 10}
SEED, TICKS = 7, 17  # 17 ticks: plans on ticks 0, 8 and 16


def example():
    spec = importlib.util.spec_from_file_location("lerobot_diffusion_example", POLICY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", params=["DDPM", "DDIM"])
def exported(request, tmp_path_factory):
    from edgekit.export import export_onnx
    from edgekit.loader import load_factory

    config = {**SMALL, "noise_scheduler_type": request.param}
    src = load_factory(f"{POLICY}:make_policy", kwargs=config)
    out = tmp_path_factory.mktemp(f"lerobot-{request.param}") / "fp32"
    res = export_onnx(src, out, tick_checks=1)
    assert res.passed and res.written
    return src, out, config


def observations(n: int) -> list[dict[str, np.ndarray]]:
    """PushT-like observations: a 96x96 uint8 camera frame and the agent's position (px)."""
    rng = np.random.default_rng(0)
    return [
        {
            "image": rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
            "state": rng.uniform(20.0, 490.0, 2).astype(np.float32),
        }
        for _ in range(n)
    ]


def lerobot_actions(policy, pre, post, obs, seed: int, monkeypatch) -> np.ndarray:
    """LeRobot's own rollout: preprocessor -> select_action -> postprocessor, every
    ``torch.randn`` drawn from ``numpy.random.default_rng(seed)`` as edgekit's tick draws."""
    rng = np.random.default_rng(seed)
    real_randn = torch.randn

    def randn(*size, generator=None, dtype=None, device=None, layout=None, **kw):
        shape = kw.pop("size", size[0] if len(size) == 1 and not isinstance(size[0], int) else size)
        assert generator is None and not kw, (generator, kw)
        x = rng.standard_normal(tuple(int(s) for s in shape)).astype(np.float32)
        return torch.from_numpy(x).to(dtype=dtype or torch.float32, device=device)

    monkeypatch.setattr(torch, "randn", randn)
    try:
        policy.reset()
        out = []
        for o in obs:
            frame = torch.from_numpy(o["image"]).permute(2, 0, 1).float() / 255  # LeRobot's CHW
            batch = {"observation.image": frame, "observation.state": torch.from_numpy(o["state"])}
            with torch.no_grad():
                action = post(policy.select_action(pre(batch)))
            out.append(action.reshape(-1).numpy())
    finally:
        monkeypatch.setattr(torch, "randn", real_randn)
    return np.stack(out)


def edgekit_actions(program, runtime, obs, seed: int) -> np.ndarray:
    from edgekit.loop import TickContext

    program.reset(seed)
    return np.stack([program.tick(TickContext(runtime), o)["action"] for o in obs])


def test_tick_mirrors_lerobots_config(exported):
    src, _, config = exported
    blocks = {b["block"]: b for b in src.spec.program.params["blocks"]}
    assert blocks["history"]["length"] == 2  # n_obs_steps
    assert blocks["chunk"]["start"] == 1 and blocks["chunk"]["execute"] == 8  # start, n_action
    assert blocks["denoise"]["shape"] == [16, 2]  # horizon x action dim
    kind = config["noise_scheduler_type"]
    assert blocks["denoise"]["scheduler"]["_class_name"] == f"{kind}Scheduler"
    assert blocks["denoise"]["num_inference_steps"] == 10
    assert blocks["unnormalize"]["mode"] == "min_max"  # LeRobot's ACTION: MIN_MAX
    norms = [b for b in src.spec.program.params["blocks"] if b["block"] == "normalize"]
    assert {b["input"]: b["mode"] for b in norms} == {"state": "min_max", "image": "mean_std"}


def test_bench_calls_the_encoder_once_and_the_denoiser_per_step(exported, cli, tmp_path):
    _, out, _ = exported
    rep = tmp_path / "b.json"
    r = cli("bench", out, "--ticks", "16", "--warmup", "0", "--json", rep)
    assert r.code == 0, r.err
    report = json.loads(rep.read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["encoder"]["calls"] == 1 and stages["denoiser"]["calls"] == 10
    assert stages["scheduler"]["kind"] == "host"
    assert any("networks ran on 2 of 16 ticks" in n for n in report["notes"]), report["notes"]


def test_declared_tick_equals_lerobots_select_action(exported, monkeypatch):
    from edgekit.artifacts import load_artifact
    from edgekit.models import build_program
    from edgekit.runtimes import OrtRuntime, TorchRuntime

    src, out, config = exported
    policy, pre, post = example().lerobot_policy(**config)  # same seed: the exported weights
    # the two networks hold all of LeRobot's DiffusionModel, with the same weights
    ours = {f"unet.{k}": v for k, v in src.networks["denoiser"].unet.state_dict().items()}
    ours |= {
        f"rgb_encoder.{k}": v for k, v in src.networks["encoder"].rgb_encoder.state_dict().items()
    }
    theirs = policy.diffusion.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(v, ours[k]) for k, v in theirs.items())

    obs = observations(TICKS)
    ref = lerobot_actions(policy, pre, post, obs, SEED, monkeypatch)
    span = np.array([511.0 - 12.0, 511.0 - 25.0], np.float32)  # the action stats' max - min

    # the declared tick on LeRobot's modules (eager torch): LeRobot's numbers
    torch_rt = TorchRuntime(src.networks, src.spec, threads=1)
    got = edgekit_actions(build_program(src.spec.program), torch_rt, obs, SEED)
    assert got.shape == ref.shape == (TICKS, 2)
    np.testing.assert_allclose(got / span, ref / span, rtol=0, atol=1e-4)

    # the same tick from the exported artifact on onnxruntime
    art = load_artifact(out)
    ort_rt = OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=1)
    got = edgekit_actions(build_program(art.manifest.spec.program), ort_rt, obs, SEED)
    np.testing.assert_allclose(got / span, ref / span, rtol=0, atol=1e-3)

    # a different seed is different noise, so a different plan: the noise is what was matched
    other = edgekit_actions(build_program(src.spec.program), torch_rt, obs, SEED + 1)
    assert np.abs(other - ref).max() / span.max() > 1e-3
