"""The sampler updates: noise schedules, timesteps and one step of each kind, as diffusers does.

The schedule is built as diffusers builds it in float32 (betas, ``alphas_cumprod`` accumulated
in double as torch's CPU ``cumprod`` does; DPM-Solver and flow sigmas rounded to float32), so the
network sees the same timesteps and the coefficients start from the same numbers. Each update
then runs in float64 and returns float32: it agrees with diffusers' float32 step to float32
rounding.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from edgekit.errors import BadInputError
from edgekit.loop.schedulers.custom import check_grid, explicit_flow_sigmas, explicit_timesteps


class Scheduler:
    """One sampler's update rule for one tick (numpy, float32 sample, float64 coefficients).

    ``timesteps[i]`` is what the network's timestep input gets at step ``i`` (diffusers'
    ``scheduler.timesteps`` after ``set_timesteps(K)``, as floats); ``init_noise_sigma`` scales the
    initial standard-normal sample (diffusers' ``init_noise_sigma``; 1.0 for every kind here).
    ``config`` holds the checked options, diffusers' defaults filled in.
    """

    kind: str
    timesteps: list[float]
    init_noise_sigma: float = 1.0

    def __init__(self, kind: str, config: dict[str, Any], timesteps: list[float]) -> None:
        self.kind = kind
        self.config = config
        self.timesteps = timesteps

    def begin(self) -> None:
        """Reset per-tick state (the multistep history); call before step 0 of each tick."""

    def step(
        self, model_output: np.ndarray, i: int, sample: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One update of ``sample`` at step ``i`` (0..K-1) given the network output at
        ``timesteps[i]``; the next sample, float32. All randomness (DDPM's variance noise) is
        drawn from ``rng``."""
        if not 0 <= i < len(self.timesteps):
            raise ValueError(f"{self.kind} step {i} is not in [0, {len(self.timesteps)})")
        m, x = np.asarray(model_output, np.float64), np.asarray(sample, np.float64)
        if m.shape != x.shape:
            raise ValueError(f"{self.kind} step: model output {m.shape} is not sample {x.shape}")
        return np.asarray(self._update(m, i, x, rng), np.float32)

    def _update(self, m: np.ndarray, i: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def alphas_cumprod(options: dict[str, Any]) -> np.ndarray:
    """diffusers' ``alphas_cumprod`` (float32) for the beta schedule in ``options``."""
    n = options["num_train_timesteps"]
    start, end = options["beta_start"], options["beta_end"]
    if options["trained_betas"] is not None:
        betas = np.asarray(options["trained_betas"], np.float32)
    elif options["beta_schedule"] == "linear":  # torch.linspace in float32
        betas = np.linspace(start, end, n).astype(np.float32)
    elif options["beta_schedule"] == "scaled_linear":
        betas = np.linspace(start**0.5, end**0.5, n).astype(np.float32) ** 2
    else:  # squaredcos_cap_v2: betas_for_alpha_bar (Nichol & Dhariwal), in float64, then float32

        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = np.asarray(
            [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)],
            np.float64,
        ).astype(np.float32)
    alphas = np.float32(1.0) - betas
    return np.cumprod(alphas, dtype=np.float64).astype(np.float32)


def _x0_eps(pred: str, m: np.ndarray, x: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """The predicted clean sample and noise from the model output, as DDIM/DDPM derive them."""
    sa, sb = math.sqrt(a), math.sqrt(1 - a)
    if pred == "epsilon":
        return (x - sb * m) / sa, m
    if pred == "sample":
        return m, (x - sa * m) / sb
    return sa * x - sb * m, sa * m + sb * x  # v_prediction


class _Ddpm(Scheduler):
    """diffusers' ``DDPMScheduler.step``: posterior mean plus fixed_small variance noise."""

    def __init__(self, options: dict[str, Any], timesteps: np.ndarray, ac: np.ndarray) -> None:
        super().__init__("ddpm", options, [float(t) for t in timesteps])
        prevs = [*timesteps[1:].tolist(), -1]  # previous_timestep: the next one in the list
        self._coefs = []
        for t, prev in zip(timesteps.tolist(), prevs, strict=True):
            a_t, a_prev = float(ac[t]), (float(ac[prev]) if prev >= 0 else 1.0)
            alpha_t, beta_prod = a_t / a_prev, 1 - a_t
            var = max((1 - a_prev) / beta_prod * (1 - alpha_t), 1e-20)
            c_x0 = math.sqrt(a_prev) * (1 - alpha_t) / beta_prod
            c_x = math.sqrt(alpha_t) * (1 - a_prev) / beta_prod
            self._coefs.append((a_t, c_x0, c_x, math.sqrt(var) if t > 0 else 0.0))

    def _update(self, m: np.ndarray, i: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a_t, c_x0, c_x, std = self._coefs[i]
        x0, _ = _x0_eps(self.config["prediction_type"], m, x, a_t)
        if self.config["clip_sample"]:
            r = self.config["clip_sample_range"]
            x0 = np.clip(x0, -r, r)
        out = c_x0 * x0 + c_x * x
        if std > 0:  # diffusers draws the noise in the sample's dtype, float32
            out += std * rng.standard_normal(x.shape).astype(np.float32)
        return out


class _Ddim(Scheduler):
    """diffusers' ``DDIMScheduler.step`` with eta=0 (use_clipped_model_output=False).

    ``alphas[i]`` is ``(alphas_cumprod[t_i], alphas_cumprod[prev_i])`` and ``prev_timesteps[i]``
    the timestep step ``i`` lands on (-1: the final step, to ``final_alpha_cumprod``). With
    explicit timesteps each step goes to the next one and the last to the clean sample."""

    def __init__(
        self, options: dict[str, Any], timesteps: np.ndarray, ac: np.ndarray, explicit: bool
    ) -> None:
        super().__init__("ddim", options, [float(t) for t in timesteps])
        ts = [int(t) for t in timesteps]
        if explicit:
            self.prev_timesteps = [*ts[1:], -1]
            final = 1.0
        else:  # diffusers steps back by num_train_timesteps // K whatever the spacing
            ratio = options["num_train_timesteps"] // len(ts)
            self.prev_timesteps = [t - ratio if t - ratio >= 0 else -1 for t in ts]
            final = 1.0 if options["set_alpha_to_one"] else float(ac[0])
        self.alphas = [
            (float(ac[t]), float(ac[p]) if p >= 0 else final)
            for t, p in zip(ts, self.prev_timesteps, strict=True)
        ]

    def _update(self, m: np.ndarray, i: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a_t, a_prev = self.alphas[i]
        x0, eps = _x0_eps(self.config["prediction_type"], m, x, a_t)
        if self.config["clip_sample"]:
            r = self.config["clip_sample_range"]
            x0 = np.clip(x0, -r, r)
        return math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps


class _DpmSolverPP(Scheduler):
    """diffusers' ``DPMSolverMultistepScheduler.step`` (dpmsolver++, order 1 or 2)."""

    def __init__(self, options: dict[str, Any], timesteps: np.ndarray, sigmas: list[float]) -> None:
        super().__init__("dpmsolver++", options, [float(t) for t in timesteps])
        k, o = len(timesteps), options
        # per step: alpha_s, sigma_s, then x_t = c_x x + c_d0 x0 (+ c_d1 (x0 - x0_prev), order 2)
        self._coefs: list[tuple[float, float, float, float, float | None]] = []
        for i in range(k):
            alpha_s, sigma_s = self._alpha_sigma(sigmas[i])
            alpha_t, sigma_t = self._alpha_sigma(sigmas[i + 1])
            final = i == k - 1 and (
                o["euler_at_final"]
                or (o["lower_order_final"] and k < 15)
                or o["final_sigmas_type"] == "zero"
            )
            if sigmas[i + 1] == 0:  # to the clean sample: x_t = x0 exactly
                self._coefs.append((alpha_s, sigma_s, 0.0, 1.0, None))
                continue
            h = math.log(sigmas[i]) - math.log(sigmas[i + 1])  # lambda = -log(sigma)
            c_x, c_d0 = sigma_t / sigma_s, -alpha_t * math.expm1(-h)
            c_d1 = None
            if o["solver_order"] == 2 and i > 0 and not final:
                r0 = (math.log(sigmas[i - 1]) - math.log(sigmas[i])) / h
                if o["solver_type"] == "midpoint":
                    c_d1 = 0.5 * c_d0 / r0
                else:  # heun
                    c_d1 = alpha_t * (math.expm1(-h) / h + 1.0) / r0
            self._coefs.append((alpha_s, sigma_s, c_x, c_d0, c_d1))
        self._last: tuple[int, np.ndarray] | None = None

    @staticmethod
    def _alpha_sigma(sigma: float) -> tuple[float, float]:
        alpha = 1 / math.sqrt(sigma**2 + 1)
        return alpha, sigma * alpha

    def begin(self) -> None:
        self._last = None

    def _update(self, m: np.ndarray, i: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        alpha_s, sigma_s, c_x, c_d0, c_d1 = self._coefs[i]
        pred = self.config["prediction_type"]
        if pred == "epsilon":
            x0 = (x - sigma_s * m) / alpha_s
        elif pred == "sample":
            x0 = m
        else:  # v_prediction
            x0 = alpha_s * x - sigma_s * m
        out = c_x * x + c_d0 * x0
        if c_d1 is not None:  # second order: D1 = (m0 - m1) / r0, r0 folded into c_d1
            if self._last is None or self._last[0] != i - 1:
                raise ValueError(
                    f"dpmsolver++ step {i} needs step {i - 1} of the same tick first "
                    "(call begin() and step 0..K-1 in order)"
                )
            out += c_d1 * (x0 - self._last[1])
        self._last = (i, x0)
        return out


class _FlowEuler(Scheduler):
    """diffusers' ``FlowMatchEulerDiscreteScheduler.step``: x += (sigma_next - sigma) * v.

    ``sigmas``: the K shifted sigmas and the final 0; ``base_sigmas``: the K sigmas before the
    shift, as ``set_timesteps(sigmas=...)`` takes them (a subset samples on the same grid)."""

    def __init__(
        self, options: dict[str, Any], sigmas: np.ndarray, n: int, base: list[float]
    ) -> None:
        timesteps = sigmas[:-1] * np.float32(n)  # float32, as diffusers
        super().__init__("flow-euler", options, [float(t) for t in timesteps])
        s = sigmas.astype(np.float64)
        self.sigmas = s.tolist()
        self.base_sigmas = base
        self._dt = (s[1:] - s[:-1]).tolist()

    def _update(self, m: np.ndarray, i: int, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return x + self._dt[i] * m


def _flow_sigmas(options: dict[str, Any], k: int) -> tuple[np.ndarray, list[float]]:
    """diffusers' flow sigmas for K steps (float32, a final 0) and the K sigmas before the
    shift: the shift is applied twice, once to the train range in ``__init__`` and once in
    ``set_timesteps``, as diffusers does."""
    n, shift = options["num_train_timesteps"], options["shift"]
    ends = np.asarray([n, 1], np.float32) / np.float32(n)
    ends = np.float32(shift) * ends / (np.float32(1) + np.float32(shift - 1) * ends)
    t = np.linspace(float(ends[0]) * n, float(ends[1]) * n, k)
    base = t / n
    s = shift * base / (1 + (shift - 1) * base)
    return np.concatenate([s.astype(np.float32), np.zeros(1, np.float32)]), base.tolist()


def _timesteps(kind: str, o: dict[str, Any], k: int, ac: np.ndarray) -> np.ndarray:
    """diffusers' ``set_timesteps(K)`` for DDPM, DDIM and DPM-Solver (int64, descending)."""
    n, spacing, offset = o["num_train_timesteps"], o["timestep_spacing"], o["steps_offset"]
    if kind == "dpmsolver++":
        lam = np.log(np.sqrt(ac)) - np.log(np.sqrt(np.float32(1) - ac))  # float32
        last = n - int(np.searchsorted(lam[::-1], np.float32(o["lambda_min_clipped"])))
        if spacing == "linspace":
            return np.linspace(0, last - 1, k + 1).round()[::-1][:-1].astype(np.int64)
        if spacing == "leading":
            return (np.arange(k + 1) * (last // (k + 1)))[::-1][:-1].astype(np.int64) + offset
        return np.arange(last, 0, -n / k).round().astype(np.int64) - 1
    if spacing == "linspace":
        return np.linspace(0, n - 1, k).round()[::-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(k) * (n // k))[::-1].astype(np.int64) + offset
    return np.round(np.arange(n, 0, -n / k)).astype(np.int64) - 1


def _first(options: dict[str, Any], key: str) -> str:
    value = options[key]
    return f"[{value[0]}, ...]" if isinstance(value, list) else str(value)


def build(
    kind: str,
    options: dict[str, Any],
    k: int,
    source: str,
    timesteps: Any = None,
    sigmas: Any = None,
) -> Scheduler:
    """The scheduler of a checked config for ``k`` inference steps, on its own grid or on
    explicit ``timesteps`` (DDPM, DDIM) / ``sigmas`` (flow-euler); see :mod:`.custom`."""
    n = options["num_train_timesteps"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise BadInputError(
            f"{source}: num_inference_steps={k!r} is not supported; supported: an integer in "
            f"[1, {n}] (num_train_timesteps)"
        )
    if sigmas is not None:
        check_grid(kind, "sigmas", source)
        if timesteps is not None:
            raise BadInputError(f"{source}: give sigmas or timesteps, not both")
    if kind == "flow-euler":
        if timesteps is not None:
            check_grid(kind, "timesteps", source)
        if sigmas is not None:
            grid = explicit_flow_sigmas(options, k, sigmas, source)
            return _FlowEuler(options, grid, n, [float(v) for v in sigmas])
        grid, base = _flow_sigmas(options, k)
        return _FlowEuler(options, grid, n, base)
    ac = alphas_cumprod(options)
    betas = "trained_betas" if options["trained_betas"] is not None else "beta_start"
    if not ac[0] < 1:  # noise level 0 at t=0: diffusers' updates divide by it
        raise BadInputError(
            f"{source}: {betas}={_first(options, betas)} gives no noise at t=0 (float32); "
            "supported: a first beta of at least 1e-7"
        )
    if not ac[-1] > 0:
        raise BadInputError(
            f"{source}: the betas drive alphas_cumprod to 0 before num_train_timesteps={n}; "
            "supported: betas whose cumulative alpha product stays above 0"
        )
    if timesteps is not None:
        ts = explicit_timesteps(kind, options, k, timesteps, source)
        return _Ddpm(options, ts, ac) if kind == "ddpm" else _Ddim(options, ts, ac, True)
    ts = _timesteps(kind, options, k, ac)
    if len(ts) != k or ts.min() < 0 or ts.max() >= n or np.any(np.diff(ts) >= 0):
        shown = ", ".join(str(t) for t in ts[:8]) + (", ..." if len(ts) > 8 else "")
        raise BadInputError(
            f"{source}: num_inference_steps={k} with timestep_spacing "
            f"{options['timestep_spacing']!r} gives diffusers' timesteps [{shown}] "
            f"({len(ts)}), not {k} distinct descending ones in [0, {n - 1}]; supported: "
            "another num_inference_steps, spacing or steps_offset"
        )
    if kind == "ddpm":
        return _Ddpm(options, ts, ac)
    if kind == "ddim":
        return _Ddim(options, ts, ac, False)
    sig = np.sqrt((np.float32(1) - ac) / ac)  # float32, as diffusers
    # the last step goes to sigma 0 ("zero") or to the sigma of t=0 ("sigma_min")
    last = 0.0 if options["final_sigmas_type"] == "zero" else float(sig[0])
    sigmas = [float(s) for s in sig[ts]] + [last]
    if any(b >= a for a, b in pairwise(sigmas)):
        raise BadInputError(
            f"{source}: {betas}={_first(options, betas)} gives equal noise levels at two of the "
            f"{k} timesteps; supported: betas > 0 (DPM-Solver divides by the log-sigma steps)"
        )
    return _DpmSolverPP(options, ts, sigmas)
