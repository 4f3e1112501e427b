"""A diffusion-policy teacher that has learned something: the zoo denoiser fitted to scripted
demonstrations, so step distillation is measured on a realistic sampler (a random-init
denoiser's sampler is a random ODE map that no one deploys).

Expert ("continue the motion"): for observation proprio ``p`` (positions q = p[:5], velocities
v = p[5:9] of the synthetic episodes in ``edgekit.calib``), the chunk is
``clip(0.8 q[a % 5] + 0.05 (h + 1) v[a % 4], -1, 1)`` for joint ``a`` and step ``h``, plus a
per-demo offset of +-0.15 on every joint (two modes, so the policy must stay a distribution).
The encoder keeps its fixed-seed init (its output includes the raw proprio); the denoiser is
trained with Chi's recipe: epsilon prediction, DDPM loss over the 100 train timesteps, AdamW,
warm-up + cosine, EMA.

    python benchmarks/demo_teacher.py --preset default --steps 3000 \
        --out benchmarks/weights/dp-default-demo.safetensors
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from edgekit.calib import synthesize_for_program
from edgekit.distill.steps import encode
from edgekit.loader import TorchSource, load
from edgekit.models import build_program
from edgekit.models.diffusion_policy.program import cosine_alphas_cumprod


def observations(src: TorchSource, n: int, seed: int) -> list[dict[str, np.ndarray]]:
    program = build_program(src.spec.program)
    out: list[dict[str, np.ndarray]] = []
    for s in range(4):
        out += synthesize_for_program(program, n // 4, seed=seed * 10 + s).observations()
    return out


def expert(obs: dict[str, np.ndarray], horizon: int, action_dim: int, mode: int) -> np.ndarray:
    p = obs["proprio"][-1].astype(np.float64)
    h = np.arange(horizon)[:, None]
    a = np.arange(action_dim)[None, :]
    q, v = p[a % 5], p[5 + a % 4]
    chunk = 0.8 * q + 0.05 * (h + 1) * v + (0.15 if mode else -0.15)
    return np.clip(chunk, -1.0, 1.0).astype(np.float32)


def train_teacher(preset: str, steps: int, seed: int = 0, log: bool = True) -> TorchSource:
    torch.manual_seed(seed)
    src = load(f"zoo:diffusion-policy:{preset}")
    assert isinstance(src, TorchSource)
    p = src.spec.program.params
    obs = observations(src, 512, seed)
    conds = encode(src.networks["encoder"], obs, build_program(src.spec.program))
    rng = np.random.default_rng(seed)
    chunks = torch.from_numpy(
        np.stack([expert(o, p["horizon"], p["action_dim"], int(rng.integers(2))) for o in obs])
    )
    ac = torch.from_numpy(cosine_alphas_cumprod(int(p["num_train_timesteps"])).astype(np.float32))
    net = src.networks["denoiser"].train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(
        net.parameters(), lr=1e-3 if preset == "tiny" else 3e-4, weight_decay=1e-6
    )
    warm = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, steps - warm))))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(conds), (128,), generator=gen)
        x0, cond = chunks[idx], conds[idx]
        t = torch.randint(0, len(ac), (128,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = ac[t][:, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        loss = torch.mean((net(xt, t.float(), cond) - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        d = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, ps in zip(ema.parameters(), net.parameters(), strict=True):
                pe.mul_(d).add_(ps.detach(), alpha=1 - d)
        if log and (step % 250 == 0 or step == steps - 1):
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.load_state_dict(ema.state_dict())
    net.eval().requires_grad_(False)
    return src


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from safetensors.torch import save_file

    src = train_teacher(args.preset, args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in src.module.state_dict().items()}, str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
