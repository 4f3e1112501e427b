"""edgekit.loop.schedulers against diffusers' own schedulers, step for step.

Each comparison builds diffusers' scheduler from the same config dict (``Cls.from_config``,
``set_timesteps(K)``) and runs the same K-step loop on both sides with a deterministic fake
network ``f(x, t)``: the timesteps must be equal and the final samples agree to float32 rounding.
DDPM's variance noise is made identical on both sides: diffusers draws it from a seeded torch
generator, and ours gets the same draws from a stand-in for ``np.random.Generator`` that replays
that seed (diffusers draws exactly when ``t > 0``, in the sample's shape, float32), so the full
stochastic update is compared, not only its mean.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from edgekit.errors import BadInputError
from edgekit.loop.schedulers import make_scheduler, read_scheduler_config
from edgekit.loop.schedulers.config import resolve
from edgekit.loop.schedulers.samplers import alphas_cumprod

SHAPE = (2, 8, 3)
BETAS = np.linspace(1e-4, 0.03, 100).tolist()  # a trained_betas list
CLASS = {
    "ddpm": "DDPMScheduler",
    "ddim": "DDIMScheduler",
    "dpmsolver++": "DPMSolverMultistepScheduler",
    "flow-euler": "FlowMatchEulerDiscreteScheduler",
}


def fake_net(x: np.ndarray, t: float) -> np.ndarray:
    """A deterministic stand-in for the denoiser: depends on the sample and the timestep."""
    ramp = np.arange(x.size, dtype=np.float32).reshape(x.shape)
    return (0.3 * x + 0.1 * np.sin(t / 100 + ramp)).astype(np.float32)


class TorchNoise:
    """Stands in for ``np.random.Generator``: the draws diffusers' DDPM takes from ``seed``."""

    def __init__(self, seed: int) -> None:
        import torch

        self.torch, self.gen = torch, torch.Generator().manual_seed(seed)

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.torch.randn(shape, generator=self.gen, dtype=self.torch.float32).numpy()


# config fragments: Stable Diffusion's betas, the cosine schedule, prediction types, spacings
SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
COS = {"beta_schedule": "squaredcos_cap_v2"}
SAMPLE, V = {"prediction_type": "sample"}, {"prediction_type": "v_prediction"}
LEAD, TRAIL, LIN = ({"timestep_spacing": s} for s in ("leading", "trailing", "linspace"))
N100 = {"num_train_timesteps": 100}
NOCLIP = {"clip_sample": False}

CASES = [
    # DDPM: prediction types x spacings x beta schedules, both variance types
    ("ddpm", 10, {}),
    ("ddpm", 10, {**SAMPLE, **SD, **TRAIL}),
    ("ddpm", 12, {**V, **COS, **LIN, **NOCLIP}),
    ("ddpm", 8, {**COS, **N100, "steps_offset": 1, "variance_type": "fixed_small_log"}),
    ("ddpm", 100, {**COS, **N100}),
    # DDIM (eta=0)
    ("ddim", 10, {**COS}),
    ("ddim", 10, {**SAMPLE, **TRAIL, "set_alpha_to_one": False}),
    ("ddim", 7, {**V, **SD, **LIN, **NOCLIP}),
    ("ddim", 16, {**N100, "steps_offset": 1, "clip_sample_range": 2.0, "trained_betas": BETAS}),
    ("ddim", 25, {**SD, **NOCLIP, "set_alpha_to_one": False, "steps_offset": 1}),
    # DPM-Solver++ (default spacing linspace)
    ("dpmsolver++", 10, {}),
    ("dpmsolver++", 10, {**SAMPLE, **SD, **LEAD, "solver_order": 1}),
    ("dpmsolver++", 12, {**V, **COS, **TRAIL, "solver_type": "heun"}),
    ("dpmsolver++", 20, {**LEAD, "lower_order_final": False, "steps_offset": 1}),
    ("dpmsolver++", 20, {"final_sigmas_type": "sigma_min", "lower_order_final": False}),
    ("dpmsolver++", 20, {**V, "final_sigmas_type": "sigma_min", "euler_at_final": True}),
    ("dpmsolver++", 8, {**SAMPLE, **COS, "lambda_min_clipped": -5.1, "solver_type": "heun"}),
    # flow matching Euler
    ("flow-euler", 10, {}),
    ("flow-euler", 28, {"shift": 3.0}),
    ("flow-euler", 1, {**N100, "shift": 1.7}),
    ("flow-euler", 50, {"shift": 0.5}),
]


def _ids() -> list[str]:
    return [
        f"{kind}-K{k}-{'-'.join(f'{a}={v}' for a, v in cfg.items() if a != 'trained_betas')}"
        for kind, k, cfg in CASES
    ]


@pytest.mark.parametrize(("kind", "k", "cfg"), CASES, ids=_ids())
def test_matches_diffusers(kind: str, k: int, cfg: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    theirs = getattr(diffusers, CLASS[kind]).from_config(cfg)
    theirs.set_timesteps(k)
    ours = make_scheduler({"_class_name": CLASS[kind], "_diffusers_version": "0.42.1", **cfg}, k)
    short = make_scheduler({"type": kind, **cfg}, k)  # the short form builds the same
    assert ours.timesteps == short.timesteps == [float(t) for t in theirs.timesteps]
    assert ours.init_noise_sigma == getattr(theirs, "init_noise_sigma", 1.0)
    if kind != "flow-euler":  # the schedule itself, as diffusers builds it in float32
        ac = alphas_cumprod(resolve({"type": kind, **cfg}, "test")[1])
        np.testing.assert_allclose(ac, theirs.alphas_cumprod.numpy(), rtol=1e-6, atol=0)

    x0 = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    x_theirs, x_ours = torch.from_numpy(x0.copy()), x0.copy()
    gen, noise = torch.Generator().manual_seed(7), TorchNoise(7)
    ours.begin()
    for i, t in enumerate(theirs.timesteps):
        m = torch.from_numpy(fake_net(x_theirs.numpy(), float(t)))
        extra = {"generator": gen} if kind == "ddpm" else {}
        x_theirs = theirs.step(m, t, x_theirs, **extra).prev_sample
        x_ours = ours.step(fake_net(x_ours, ours.timesteps[i]), i, x_ours, noise)
        assert x_ours.dtype == np.float32
    expected = x_theirs.numpy()
    np.testing.assert_allclose(x_ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_multistep_state_is_per_tick() -> None:
    """Two ticks from the same start agree (begin() resets the history); skipping a step fails."""
    sched = make_scheduler({"type": "dpmsolver++"}, 6)
    x0 = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    rng = np.random.default_rng(0)

    def tick() -> np.ndarray:
        sched.begin()
        x = x0
        for i, t in enumerate(sched.timesteps):
            x = sched.step(fake_net(x, t), i, x, rng)
        return x

    np.testing.assert_array_equal(tick(), tick())
    sched.begin()
    x = sched.step(fake_net(x0, 999.0), 0, x0, rng)
    with pytest.raises(ValueError, match="needs step 1"):
        sched.step(fake_net(x, 0.0), 2, x, rng)


def test_agrees_with_the_zoo_diffusion_policy() -> None:
    """The zoo policy's own DDIM/DDPM (Chi's config) and ours: same timesteps, same samples."""
    from edgekit.models.diffusion_policy.program import DiffusionSamplerProgram

    chi = {
        "_class_name": "DDIMScheduler",
        "num_train_timesteps": 100,
        "beta_schedule": "squaredcos_cap_v2",
        "clip_sample": True,
        "set_alpha_to_one": True,
        "steps_offset": 0,
        "prediction_type": "epsilon",
    }
    x0 = np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32)
    for name, k in (("ddim", 16), ("ddim", 5), ("ddpm", 100), ("ddpm", 10)):
        zoo = DiffusionSamplerProgram(
            {
                "num_train_timesteps": 100,
                "num_inference_steps": k,
                "scheduler": name,
                "action_low": [-1.0],
                "action_high": [1.0],
            }
        )
        cls = "DDIMScheduler" if name == "ddim" else "DDPMScheduler"
        ours = make_scheduler({**chi, "_class_name": cls}, k)
        assert ours.timesteps == [float(t) for t in zoo.timesteps]
        zoo.rng, rng = np.random.default_rng(5), np.random.default_rng(5)  # same DDPM noise
        x_zoo, x_ours = x0.copy(), x0.copy()
        ours.begin()
        for i, t in enumerate(ours.timesteps):
            x_zoo = zoo.step(x_zoo, fake_net(x_zoo, t), i)
            x_ours = ours.step(fake_net(x_ours, t), i, x_ours, rng)
        np.testing.assert_allclose(x_ours, x_zoo, rtol=1e-5, atol=1e-5)


def _run_both(theirs: Any, ours: Any, kind: str) -> None:
    """The same K-step loop on diffusers' scheduler and ours (DDPM noise replayed)."""
    torch = pytest.importorskip("torch")
    assert ours.timesteps == [float(t) for t in theirs.timesteps]
    x0 = np.random.default_rng(2).standard_normal(SHAPE).astype(np.float32)
    x_theirs, x_ours = torch.from_numpy(x0.copy()), x0.copy()
    gen, noise = torch.Generator().manual_seed(11), TorchNoise(11)
    ours.begin()
    for i, t in enumerate(theirs.timesteps):
        m = torch.from_numpy(fake_net(x_theirs.numpy(), float(t)))
        extra = {"generator": gen} if kind == "ddpm" else {}
        x_theirs = theirs.step(m, t, x_theirs, **extra).prev_sample
        x_ours = ours.step(fake_net(x_ours, ours.timesteps[i]), i, x_ours, noise)
    expected = x_theirs.numpy()
    np.testing.assert_allclose(x_ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


CUSTOM_DDPM = [
    ([999, 750, 500, 250, 0], {}),
    ([901, 640, 333, 90], {**SAMPLE, **SD}),
    ([99, 93, 62, 11, 3], {**V, **COS, **N100, **NOCLIP}),
    ([80, 40], {**COS, **N100, "variance_type": "fixed_small_log", "clip_sample_range": 2.0}),
]


@pytest.mark.parametrize(("timesteps", "cfg"), CUSTOM_DDPM)
def test_explicit_timesteps_match_diffusers_ddpm(timesteps: list[int], cfg: dict) -> None:
    """diffusers' DDPM takes a custom list (``set_timesteps(timesteps=...)``): each step to
    the next, the last to the clean sample, with the variance noise of that transition."""
    diffusers = pytest.importorskip("diffusers")
    theirs = diffusers.DDPMScheduler.from_config(cfg)
    theirs.set_timesteps(timesteps=timesteps)
    ours = make_scheduler({"type": "ddpm", **cfg}, len(timesteps), timesteps=timesteps)
    _run_both(theirs, ours, "ddpm")


@pytest.mark.parametrize(
    ("sigmas", "cfg"),
    [([1.0, 0.75, 0.5, 0.25], {}), ([0.97, 0.6, 0.2], {"shift": 3.0}), ([0.5], {**N100})],
)
def test_explicit_sigmas_match_diffusers_flow_euler(sigmas: list[float], cfg: dict) -> None:
    """diffusers' flow-matching Euler takes custom sigmas and shifts them (float32)."""
    diffusers = pytest.importorskip("diffusers")
    theirs = diffusers.FlowMatchEulerDiscreteScheduler.from_config(cfg)
    theirs.set_timesteps(sigmas=sigmas)
    ours = make_scheduler({"type": "flow-euler", **cfg}, len(sigmas), sigmas=sigmas)
    np.testing.assert_array_equal(np.float32(ours.sigmas), theirs.sigmas.numpy())
    _run_both(theirs, ours, "flow-euler")


def test_flow_base_sigmas_rebuild_the_grid() -> None:
    """A subset of ``base_sigmas`` samples on the same (shifted) grid, to float32 rounding."""
    sched = make_scheduler({"type": "flow-euler", "shift": 3.0}, 16)
    sub = make_scheduler({"type": "flow-euler", "shift": 3.0}, 4, sigmas=sched.base_sigmas[::4])
    np.testing.assert_allclose(sub.sigmas[:-1], sched.sigmas[:-1:4], rtol=1e-6)
    assert sub.sigmas[-1] == 0.0


@pytest.mark.parametrize(
    ("k", "cfg"),
    [(10, {**SAMPLE}), (7, {**V, **SD, **NOCLIP}), (16, {**COS, **N100, "steps_offset": 1})],
)
def test_explicit_ddim_on_a_leading_grid_is_diffusers_ddim(k: int, cfg: dict) -> None:
    """diffusers' DDIM takes no custom list; on its own leading grid with set_alpha_to_one,
    each of its steps lands on the next timestep and the last on the clean sample, which is
    what explicit timesteps do: both must agree there."""
    diffusers = pytest.importorskip("diffusers")
    theirs = diffusers.DDIMScheduler.from_config(cfg)
    theirs.set_timesteps(k)
    grid = [int(t) for t in theirs.timesteps]
    ours = make_scheduler({"type": "ddim", **cfg}, k, timesteps=grid)
    assert ours.prev_timesteps == [*grid[1:], -1]
    _run_both(theirs, ours, "ddim")


def test_explicit_ddim_matches_the_zoo_students_sampler() -> None:
    """The zoo's explicit-timestep DDIM (what its step students run; regular grids agree with
    diffusers above) and ours on irregular grids."""
    from edgekit.models.diffusion_policy.program import DiffusionSamplerProgram

    chi = {"type": "ddim", "num_train_timesteps": 100, **COS, "prediction_type": "epsilon"}
    x0 = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    for grid in ([90, 48], [99, 70, 31, 5], [50], [96, 84, 72, 60, 48, 36, 24, 12]):
        zoo = DiffusionSamplerProgram({"num_train_timesteps": 100, "scheduler": "ddim",
                                       "num_inference_steps": len(grid), "timesteps": grid,
                                       "action_low": [-1.0], "action_high": [1.0]})  # fmt: skip
        ours = make_scheduler(chi, len(grid), timesteps=grid)
        assert ours.timesteps == [float(t) for t in zoo.timesteps]
        x_zoo, x_ours = x0.copy(), x0.copy()
        for i, t in enumerate(ours.timesteps):
            x_zoo = zoo.step(x_zoo, fake_net(x_zoo, t), i)
            x_ours = ours.step(fake_net(x_ours, t), i, x_ours, np.random.default_rng(0))
        np.testing.assert_allclose(x_ours, x_zoo, rtol=1e-5, atol=1e-5)


BAD_GRIDS = [
    ({"type": "ddim"}, 2, {"timesteps": [10, 50]}, "timesteps="),
    ({"type": "ddim"}, 3, {"timesteps": [50, 10]}, "timesteps="),
    ({"type": "ddpm", **N100}, 2, {"timesteps": [100, 10]}, "timesteps="),
    ({"type": "ddpm"}, 2, {"timesteps": [50, -1]}, "timesteps="),
    ({"type": "ddim"}, 2, {"timesteps": [50.5, 10]}, "timesteps="),
    ({"type": "dpmsolver++"}, 2, {"timesteps": [500, 10]}, "explicit timesteps"),
    ({"type": "flow-euler"}, 2, {"timesteps": [500, 10]}, "explicit timesteps"),
    ({"type": "ddim"}, 2, {"sigmas": [0.5, 0.1]}, "explicit sigmas"),
    ({"type": "flow-euler"}, 2, {"sigmas": [0.1, 0.5]}, "sigmas="),
    ({"type": "flow-euler"}, 2, {"sigmas": [1.5, 0.5]}, "sigmas="),
    ({"type": "flow-euler"}, 1, {"sigmas": [0.0]}, "sigmas="),
]


@pytest.mark.parametrize(("config", "k", "grid", "needle"), BAD_GRIDS)
def test_refuses_bad_explicit_grids(config: dict, k: int, grid: dict, needle: str) -> None:
    with pytest.raises(BadInputError) as e:
        make_scheduler(config, k, **grid)
    message = str(e.value)
    assert needle in message and "supported" in message and "\n" not in message, message


BAD = [
    ({"type": "ddim", "thresholding": True}, 10, "thresholding"),
    (
        {"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": True},
        10,
        "use_karras_sigmas",
    ),
    ({"_class_name": "EulerDiscreteScheduler"}, 10, "_class_name"),
    ({"type": "euler"}, 10, "type"),
    ({"num_train_timesteps": 1000}, 10, "_class_name"),
    ({"type": "ddim", "eta": 0.5}, 10, "eta"),
    ({"type": "ddpm"}, 0, "num_inference_steps"),
    ({"type": "ddpm", "num_train_timesteps": 50}, 51, "num_inference_steps"),
    ({"type": "ddim", "timestep_spacing": "trailing"}, 61, "num_inference_steps"),
    ({"type": "dpmsolver++"}, 1000, "num_inference_steps"),
    ({"type": "ddpm", "variance_type": "learned_range"}, 10, "variance_type"),
    ({"type": "ddpm", "beta_schedule": "sigmoid"}, 10, "beta_schedule"),
    ({"type": "ddim", "rescale_betas_zero_snr": True}, 10, "rescale_betas_zero_snr"),
    ({"type": "ddim", "prediction_type": "flow_prediction"}, 10, "prediction_type"),
    ({"type": "ddim", "steps_offset": 1, "num_train_timesteps": 10}, 10, "num_inference_steps"),
    ({"type": "dpmsolver++", "algorithm_type": "sde-dpmsolver++"}, 10, "algorithm_type"),
    ({"type": "dpmsolver++", "solver_order": 3}, 10, "solver_order"),
    ({"type": "dpmsolver++", "use_exponential_sigmas": True}, 10, "use_exponential_sigmas"),
    ({"type": "flow-euler", "use_dynamic_shifting": True}, 10, "use_dynamic_shifting"),
    ({"type": "flow-euler", "stochastic_sampling": True}, 10, "stochastic_sampling"),
    ({"type": "flow-euler", "shift": 0}, 10, "shift"),
    ({"type": "ddim", "trained_betas": [0.01] * 5}, 10, "trained_betas"),
    ({"type": "ddim", "beta_end": float("nan")}, 10, "beta_end"),
    ({"type": "ddpm", "beta_start": 0}, 10, "beta_start"),
    ({"type": "dpmsolver++", "trained_betas": [0.01] + [0.0] * 999}, 10, "trained_betas"),
    ({"type": "ddim", "_class_name": "DDPMScheduler"}, 10, "type"),
]


@pytest.mark.parametrize(("config", "k", "key"), BAD, ids=[b[2] + str(b[1]) for b in BAD])
def test_refuses_what_it_does_not_reproduce(config: dict[str, Any], k: int, key: str) -> None:
    with pytest.raises(BadInputError) as e:
        make_scheduler(config, k)
    message = str(e.value)
    assert f"{key}=" in message or f"{key} " in message, message
    assert "\n" not in message and "supported" in message


def test_read_scheduler_config(tmp_path) -> None:
    good = tmp_path / "scheduler_config.json"
    cfg = {"_class_name": "DDIMScheduler", "_diffusers_version": "0.42.1", "clip_sample": False}
    good.write_text(json.dumps(cfg))
    assert read_scheduler_config(good) == cfg
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"_class_name": "DDIMScheduler",')
    with pytest.raises(BadInputError, match=r"broken\.json: not valid JSON \(line 1"):
        read_scheduler_config(bad_json)
    unsupported = tmp_path / "karras.json"
    unsupported.write_text(
        json.dumps({**cfg, "_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": True})
    )
    with pytest.raises(BadInputError, match=r"karras\.json: use_karras_sigmas=true .*supported"):
        read_scheduler_config(unsupported)
    with pytest.raises(BadInputError, match=r"missing\.json: cannot read"):
        read_scheduler_config(tmp_path / "missing.json")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(BadInputError, match=r"list\.json: a scheduler config is a JSON object"):
        read_scheduler_config(listed)


def test_imports_no_torch() -> None:
    code = "import edgekit.loop.schedulers, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
