"""``diffusion-policy``: its control-loop program(s).

numpy only: an exported artifact runs them without torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgekit.loop import Arrays, LoopProgram, TickContext, register_program
from edgekit.spec import TensorSpec


def cosine_alphas_cumprod(n: int, max_beta: float = 0.999) -> np.ndarray:
    """diffusers' ``squaredcos_cap_v2`` schedule (Nichol & Dhariwal): cumulative alpha products."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return np.cumprod(1.0 - np.asarray(betas, np.float64))


@register_program
class DiffusionSamplerProgram(LoopProgram):
    """encode obs once -> K denoiser calls with a DDIM (eta=0) or DDPM update -> action chunk.

    The scheduler follows diffusers as configured by Chi: epsilon prediction, clip_sample to
    [-1, 1], "leading" timestep spacing, DDIM with set_alpha_to_one, DDPM fixed_small variance.
    Step-distilled students give explicit ``timesteps`` (descending; each DDIM step goes to the
    next one, the last to the clean sample), as diffusers' custom-timestep schedulers do.
    ``prediction_type`` "sample" (a one-step student's) reads the denoiser's output as the
    clean chunk, as diffusers' DDIM does (noise derived from it before the clip).
    """

    name = "diffusion-sampler"
    host_stages = ("preprocess", "scheduler", "postprocess")

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        p = self.params
        n, k = int(p["num_train_timesteps"]), int(p["num_inference_steps"])
        if not 0 < k <= n:
            raise ValueError(f"num_inference_steps {k} not in [1, {n}]")
        if p["scheduler"] not in ("ddim", "ddpm"):
            raise ValueError(f"scheduler {p['scheduler']!r} is not 'ddim' or 'ddpm'")
        if p.get("prediction_type", "epsilon") not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type {p['prediction_type']!r}: 'epsilon' or 'sample'")
        if p.get("beta_schedule", "squaredcos_cap_v2") != "squaredcos_cap_v2":
            raise ValueError(f"beta_schedule {p['beta_schedule']!r}: only squaredcos_cap_v2")
        ratio = n // k
        if p.get("timesteps"):  # explicit, descending; each step goes to the next, then to 0
            self.timesteps = [int(t) for t in p["timesteps"]]
            if (
                len(self.timesteps) != k
                or any(
                    not 0 <= b < a < n
                    for a, b in zip(self.timesteps, self.timesteps[1:], strict=False)
                )
                or not 0 <= self.timesteps[-1] < n
            ):
                raise ValueError(f"timesteps {self.timesteps}: need {k} descending in [0, {n})")
            prevs = [*self.timesteps[1:], -1]
        else:  # diffusers' "leading" spacing
            self.timesteps = [i * ratio for i in reversed(range(k))]
            prevs = [t - ratio for t in self.timesteps]
        # coefficients in float64, applied as float32 scalars so the sample stays float32
        ac = cosine_alphas_cumprod(n)
        self.coefs = [
            self._coefs(ac, t, prev) for t, prev in zip(self.timesteps, prevs, strict=True)
        ]
        self.low = np.asarray(p["action_low"], np.float32)
        self.high = np.asarray(p["action_high"], np.float32)

    def _coefs(self, ac: np.ndarray, t: int, prev: int) -> tuple[np.float32, ...]:
        a_t, a_prev = ac[t], (ac[prev] if prev >= 0 else 1.0)  # alpha_prod_t, alpha_prod_t_prev
        # x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t)
        c = [1 / math.sqrt(a_t), math.sqrt(1 - a_t) / math.sqrt(a_t)]
        if self.params["scheduler"] == "ddim":  # x' = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps
            c += [math.sqrt(a_prev), math.sqrt(1 - a_prev), 0.0, 0.0]
        else:  # posterior mean q(x_prev | x_t, x0) + fixed_small variance noise
            alpha_t = a_t / a_prev
            beta_t = 1 - alpha_t
            var = max((1 - a_prev) / (1 - a_t) * beta_t, 1e-20) if t > 0 else 0.0
            c += [math.sqrt(a_prev) * beta_t / (1 - a_t), 0.0]
            c += [math.sqrt(alpha_t) * (1 - a_prev) / (1 - a_t), math.sqrt(var)]
        return tuple(np.float32(v) for v in c)

    def observation_spec(self) -> tuple[TensorSpec, ...]:
        p = self.params
        size = p.get("image_size", 96)
        return (
            TensorSpec("image", (p["obs_horizon"], size, size, 3), "uint8", sampler="image"),
            TensorSpec("proprio", (p["obs_horizon"], p["proprio_dim"])),
        )

    def calls_per_tick(self) -> dict[str, int]:
        return {"encoder": 1, "denoiser": len(self.timesteps)}

    def step(self, x: np.ndarray, out: np.ndarray, i: int) -> np.ndarray:
        """One scheduler update of the sample ``x`` given the denoiser's output at step ``i``
        (the predicted noise, or for ``prediction_type`` "sample" the clean chunk)."""
        inv_sqrt_a, sqrt_ratio, c_x0, c_eps, c_x, sigma = self.coefs[i]
        if self.params.get("prediction_type", "epsilon") == "sample":
            eps = (inv_sqrt_a * x - out) / sqrt_ratio  # (x - sqrt(a_t) x0) / sqrt(1 - a_t)
            x0 = np.clip(out, -1.0, 1.0)
        else:
            eps = out
            x0 = np.clip(inv_sqrt_a * x - sqrt_ratio * eps, -1.0, 1.0)  # diffusers clip_sample
        if self.params["scheduler"] == "ddim":
            # eps is used as predicted (use_clipped_model_output=False), as in diffusers
            return c_x0 * x0 + c_eps * eps
        out = c_x0 * x0 + c_x * x
        if sigma > 0:
            out = out + sigma * self.rng.standard_normal(x.shape).astype(np.float32)
        return out

    def preprocess(self, obs: Arrays) -> tuple[np.ndarray, np.ndarray]:
        """Encoder inputs of one observation: images to [-1, 1] NCHW, proprio scaled."""
        image = obs["image"].transpose(0, 3, 1, 2)[None].astype(np.float32)
        image = image * np.float32(1 / 127.5) - np.float32(1.0)
        proprio = obs["proprio"].astype(np.float32)[None]
        if self.params.get("proprio_scale"):
            proprio = proprio * np.asarray(self.params["proprio_scale"], np.float32)
        return image, proprio

    def tick(self, ctx: TickContext, obs: Arrays) -> Arrays:
        p = self.params
        with ctx.host("preprocess"):
            image, proprio = self.preprocess(obs)
        cond = ctx.call("encoder", {"image": image, "proprio": proprio})["cond"]
        with ctx.host("scheduler"):
            x = self.rng.standard_normal((1, p["horizon"], p["action_dim"])).astype(np.float32)
        for i, t in enumerate(self.timesteps):
            feeds = {"sample": x, "timestep": np.full((1,), t, np.float32), "cond": cond}
            eps = ctx.call("denoiser", feeds)["noise_pred"]
            with ctx.host("scheduler"):
                x = self.step(x, eps, i)
        with ctx.host("postprocess"):
            chunk = (np.clip(x[0], -1.0, 1.0) + 1) * np.float32(0.5) * (self.high - self.low)
            chunk = (chunk + self.low).astype(np.float32)
            # Chi executes the steps from the current observation on: index obs_horizon - 1
            start = p.get("action_start", p["obs_horizon"] - 1)
            actions = chunk[start : start + p["n_action_steps"]]
        return {"action_chunk": chunk, "actions": actions}
