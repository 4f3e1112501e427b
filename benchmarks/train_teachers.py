"""Train the closed-loop teachers that ship in ``edgekit/zoo/weights/`` (reproduces them).

Task: ``reacher`` (gymnasium Reacher-v5, MuJoCo; ``edgekit.eval.envs``). Demonstrations: the
task's scripted expert (inverse kinematics to a joint target + a PD law); half of the episodes
are perturbed so the demonstrations cover the states a slightly-off policy visits: for the MLP
with DART-style noise (executed torque = the expert's + N(0, 0.3), label the expert's), for
the diffusion policy with 10 steps of random torque first (not samples) and then the expert's
torque + N(0, 0.1). Both teachers are behaviour-cloned:

- ``zoo:humanoid:reacher`` (HOVER-style MLP on the last 2 observations) commands torque: MSE
  to the expert's torque, AdamW, warm-up + cosine.
- ``zoo:diffusion-policy:reacher`` (Chi et al.'s encoder + FiLM 1-D UNet, 96 x 96 MuJoCo
  camera frames + the 10-D observation, chunks of 16, 8 executed) commands joint positions
  (relative to the joints at the tick, / pi; the arm's PD tracks them, ``Reacher.actuate``):
  the chunk is the expert's joint targets from the step before the observation on. The
  denoiser is trained with Chi's recipe (epsilon prediction over 100 DDPM timesteps, AdamW,
  warm-up + cosine, EMA); the image encoder keeps its seeded init (its conditioning carries
  the observation vector next to the image features; training it too is ~20x the CPU time).
  A torque-chunk version of this teacher, trained the same way, reached 24-38% (open-loop
  torque chunks drift off the demonstrated trajectory), hence position commands.
- ``zoo:vla-flow:reacher`` (pi0 / SmolVLA-style flow-matching VLA: one 32 x 32 camera frame,
  a fixed 2-token instruction and the 10-D observation in the prefix, its KV cache read by
  the action expert over 10 Euler steps; chunks of 16, 8 executed) commands joint positions
  as the diffusion policy does, on the same demonstrations (the diffusion policy's
  perturbation). Trained end to end (prefix and expert) with pi0's flow matching: x_t = t *
  noise + (1 - t) * actions, v = noise - actions, t = 0.999 * Beta(1.5, 1) + 0.001; AdamW,
  warm-up + cosine, EMA.

Each teacher is then evaluated in closed loop through onnxruntime (``edgekit.eval``) and its
training record (data, steps, loss, success) written next to the weights.

    python benchmarks/train_teachers.py --kinds humanoid diffusion-policy
    OMP_NUM_THREADS=1 python benchmarks/train_teachers.py --kinds vla-flow --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.artifacts import sha256_file
from edgekit.eval import EvalConfig
from edgekit.eval.envs import get_task
from edgekit.eval.runner import record_observations
from edgekit.loader import SHIPPED_WEIGHTS, TorchSource
from edgekit.models import build_program, get_binding

SEED = 0
CALIB = Path(__file__).resolve().parents[1] / "calib_data"
PUSH = 10  # steps of random torque at the start of a perturbed diffusion demonstration
DP_NOISE = 0.1  # torque noise after the push
CALIB_EPISODES = {"humanoid": 4, "diffusion-policy": 8, "vla-flow": 8}  # 200, 56, 56 ticks
# *-dart.npz: every other episode perturbed; humanoid 100 episodes (5000 ticks), the diffusion
# policy 300 (2100 ticks: its 1-step student kept 179/200 of the teacher's 188/200 from them,
# 173/200 from the first 100)
DART_EPISODES = {"humanoid": 100, "diffusion-policy": 300, "vla-flow": 300}


def demonstrations(kind: str, params: dict[str, Any], episodes: int, seed: int) -> list[dict]:
    """Per episode: the observations the program sees, the expert's labels, and which steps
    are training samples."""
    task, binding = get_task("reacher"), get_binding(kind)
    env = task.make(render=binding.renders(params))
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 100_000 + ep)
        observe = binding.new_observer(params)
        perturbed = ep % 2 == 1
        seen, labels, used, targets, anchors = [], [], [], [], []
        for t in range(task.max_steps):
            seen.append(observe(env, obs))
            label = task.expert(env)
            labels.append(label)
            targets.append(task.target(env))  # type: ignore[attr-defined]
            anchors.append(task.anchor(env))
            if not perturbed:
                act, use = label, True
            elif kind == "humanoid":  # DART: noisy execution, the expert's label
                act, use = label + rng.normal(0, 0.3, 2).astype(np.float32), True
            else:
                # a diffusion policy executes 8-step chunks open loop: a random-torque push
                # for the first PUSH steps (not samples), then the expert's torque + a small
                # N(0, DP_NOISE) (labels the expert's), so the demonstrations hold the
                # corrections the expert makes near the target while a chunk stays close to
                # the actions of the trajectory it was executed on
                if t < PUSH:
                    act, use = rng.uniform(-1, 1, 2).astype(np.float32), False
                else:
                    act = label + rng.normal(0, DP_NOISE, 2).astype(np.float32)
                    use = t > PUSH
            used.append(use)
            obs, _, term, trunc, _ = env.step(np.clip(act, -1, 1))
            if term or trunc:
                break
        out.append({"obs": seen, "labels": np.stack(labels), "used": used,
                    "targets": np.stack(targets), "anchors": np.stack(anchors)})  # fmt: skip
    env.close()
    return out


def _schedule(opt: Any, steps: int, warm: int = 100) -> Any:
    return torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            (s + 1) / warm
            if s < warm
            else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warm) / max(1, steps - warm))))
        ),
    )


def train_mlp(src: TorchSource, demos: list[dict], steps: int) -> dict[str, Any]:
    p = src.spec.program.params
    ctx = int(p["context"])
    xs, ys = [], []
    for d in demos:  # the program's history ring: zeros before the first observation
        states = np.stack([o["proprio"] for o in d["obs"]]).clip(-5, 5)
        padded = np.concatenate([np.zeros((ctx - 1, states.shape[1]), np.float32), states])
        for t in range(len(states)):
            xs.append(padded[t : t + ctx])
            ys.append(d["labels"][t])
    x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
    net = src.networks["policy"].train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-5)
    sched = _schedule(opt, steps)
    gen = torch.Generator().manual_seed(SEED)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (256,), generator=gen)
        loss = torch.mean((net(x[idx]) - y[idx]) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval().requires_grad_(False)
    return {"samples": len(x), "loss_first": losses[0], "loss_last": float(np.mean(losses[-50:]))}


def train_diffusion(src: TorchSource, demos: list[dict], steps: int) -> dict[str, Any]:
    from edgekit.distill.steps import encode
    from edgekit.models.diffusion_policy.program import cosine_alphas_cumprod

    p = src.spec.program.params
    observations, chunks = position_chunks(demos, int(p["horizon"]), int(p["action_start"]))
    program = build_program(src.spec.program)
    conds = encode(src.networks["encoder"].eval(), observations, program)
    x0_all = torch.from_numpy(chunks)
    ac = torch.from_numpy(cosine_alphas_cumprod(int(p["num_train_timesteps"])).astype(np.float32))
    net = src.networks["denoiser"].train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-6)
    sched = _schedule(opt, steps)
    gen = torch.Generator().manual_seed(SEED)
    losses = []
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(conds), (256,), generator=gen)
        x0, cond = x0_all[idx], conds[idx]
        t = torch.randint(0, len(ac), (len(idx),), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = ac[t][:, None, None]
        loss = torch.mean((net(a.sqrt() * x0 + (1 - a).sqrt() * eps, t.float(), cond) - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, ps in zip(ema.parameters(), net.parameters(), strict=True):
                pe.mul_(decay).add_(ps.detach(), alpha=1 - decay)
        losses.append(loss.item())
        if step % 500 == 0:
            print(f"  step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.load_state_dict(ema.state_dict())
    net.eval().requires_grad_(False)
    return {
        "samples": len(conds),
        "loss_first": losses[0],
        "loss_last": float(np.mean(losses[-50:])),
    }


def position_chunks(demos: list[dict], horizon: int, start: int) -> tuple[list, np.ndarray]:
    """The training samples of a joint-position chunk policy: the observation at each used
    step, and the expert's joint targets from ``t - start`` on (relative to the joints at t,
    / pi), edge-padded as Chi does."""
    task = get_task("reacher")
    observations, chunks = [], []
    for d in demos:
        n = len(d["labels"])
        for t in range(n):
            if not d["used"][t]:
                continue
            idx = np.clip(np.arange(t - start, t - start + horizon), 0, n - 1)
            observations.append(d["obs"][t])
            chunks.append(np.stack([task.position_command(d["targets"][i], d["anchors"][t])  # type: ignore[attr-defined]
                                    for i in idx]))  # fmt: skip
    return observations, np.stack(chunks)


def train_flow(src: TorchSource, demos: list[dict], steps: int) -> dict[str, Any]:
    """pi0's flow matching on the whole model (prefix and expert, end to end): x_t = t * noise
    + (1 - t) * actions, the expert regresses v = noise - actions, t = 0.999 * Beta(1.5, 1) +
    0.001 (pi0's time distribution, weighted to the noisy end); AdamW, warm-up + cosine, EMA.
    Inputs normalized as the program does (images to [-1, 1], proprio and actions by the
    preset's standard deviations)."""
    p = src.spec.program.params
    observations, chunks = position_chunks(demos, int(p["chunk"]), 0)
    images = np.stack([o["images"] for o in observations])  # (N, cams, S, S, 3) uint8
    imgs = torch.from_numpy(images).permute(0, 1, 4, 2, 3).contiguous()  # uint8 until batched
    instr = torch.from_numpy(np.stack([o["instruction"] for o in observations]).astype(np.int64))
    proprio = np.stack([o["proprio"] for o in observations]).astype(np.float32)
    mean, std = np.float32(p["proprio_mean"]), np.float32(p["proprio_std"])
    prop = torch.from_numpy((proprio - mean) / std)
    act = torch.from_numpy(
        ((chunks - np.float32(p["action_mean"])) / np.float32(p["action_std"])).astype(np.float32)
    )
    model = src.module.train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    prefix, expert = src.networks["prefix"], src.networks["expert"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    sched = _schedule(opt, steps)
    gen = torch.Generator().manual_seed(SEED)
    beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0))
    losses = []
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(0, len(act), (256,), generator=gen)
        x0 = act[idx]
        keys, values = prefix(imgs[idx].float() / 127.5 - 1.0, instr[idx], prop[idx])
        t = 0.999 * beta.sample((len(idx),)) + 0.001
        noise = torch.randn(x0.shape, generator=gen)
        x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * x0
        loss = torch.mean((expert(x_t, t, keys, values) - (noise - x0)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, ps in zip(ema.parameters(), model.parameters(), strict=True):
                pe.mul_(decay).add_(ps.detach(), alpha=1 - decay)
        losses.append(loss.item())
        if step % 500 == 0:
            print(f"  step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.load_state_dict(ema.state_dict())
    model.eval().requires_grad_(False)
    return {
        "samples": len(act),
        "loss_first": losses[0],
        "loss_last": float(np.mean(losses[-50:])),
        "flow_time": "0.999 * Beta(1.5, 1) + 0.001 (pi0)",
        "action_std_of_data": [float(v) for v in chunks.reshape(-1, chunks.shape[-1]).std(0)],
    }


def main(argv: list[str] | None = None) -> int:
    from safetensors.torch import save_file

    from edgekit.eval import evaluate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", default=["humanoid", "diffusion-policy"])
    ap.add_argument("--episodes", type=int, default=400, help="demonstration episodes")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps")
    ap.add_argument("--eval-episodes", type=int, default=50)
    ap.add_argument("--dart-episodes", type=int, default=None,
                    help="DART-perturbed episodes (default per kind)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=SHIPPED_WEIGHTS, help="weights + records")
    ap.add_argument("--calib-out", type=Path, default=CALIB, help="the recorded observations")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (vla-flow: 1)")
    ap.add_argument("--recordings-only", action="store_true",
                    help="only (re)write the calib_data recordings (no training)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.recordings_only:  # they depend on the program's parameters, not on the weights
        for kind in args.kinds:
            params = _fresh(kind).spec.program.params
            write_recordings(kind, params, args.calib_out, args.dart_episodes)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    for kind in args.kinds:
        torch.manual_seed(SEED)
        ref = f"zoo:{kind}:reacher"
        src = _fresh(kind)
        t0 = time.time()
        demos = demonstrations(kind, src.spec.program.params, args.episodes, SEED)
        t_demo = time.time() - t0
        steps = args.steps or {"humanoid": 20000, "diffusion-policy": 6000}.get(kind, 3000)
        print(f"{ref}: {len(demos)} demonstrations in {t_demo:.0f} s; training {steps} steps")
        train = {"humanoid": train_mlp, "vla-flow": train_flow}.get(kind, train_diffusion)
        record = train(src, demos, steps)
        record |= {
            "steps": steps,
            "seconds": time.time() - t0 - t_demo,
            "demonstrations": len(demos),
            "perturbed": "every other episode",
            "seed": SEED,
            "commands": get_binding(kind).command,
            "threads": torch.get_num_threads(),
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{kind}-reacher.safetensors"
        state = {k: v.contiguous() for k, v in src.module.state_dict().items()}
        save_file(state, str(path))
        cfg = EvalConfig(env="reacher", episodes=args.eval_episodes, seed=1, teacher="none")
        res = evaluate(src, cfg)
        record["closed_loop"] = {
            "episodes": args.eval_episodes,
            "seed": 1,
            "success_rate": res.candidate.success_rate,
            "return_mean": res.candidate.return_mean,
            "runtime": "onnxruntime FP32 (edgekit eval)",
        }
        record["weights_sha256"] = sha256_file(path)
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        write_recordings(kind, src.spec.program.params, args.calib_out, args.dart_episodes)
        print(f"{ref}: wrote {path}; closed-loop success {res.candidate.success_rate:.2f}")
    return 0


def write_recordings(
    kind: str, params: dict[str, Any], out: Path = CALIB, dart: int | None = None
) -> None:
    """Calibration / distillation observations, as the program sees them at its ticks (seeds
    apart from the demonstrations and the evaluation): the expert's episodes, and for the MLP
    and the diffusion policy a larger DART-perturbed set to distil students from (a student
    distilled on the expert's few clean episodes never sees a state off the expert's path and
    fails in closed loop)."""
    sets = {f"reacher-{kind}.npz": (CALIB_EPISODES[kind], 0.0)}
    if kind in DART_EPISODES:  # the students' sets (the 1-step and narrower students too)
        sets[f"reacher-{kind}-dart.npz"] = (dart or DART_EPISODES[kind], 0.3)
    for name, (episodes, noise) in sets.items():
        arrays = record_observations(get_task("reacher"), kind, params, episodes, seed=50_000,
                                     noise=noise)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(out / name, **arrays)
        print(f"wrote {out / name} ({len(next(iter(arrays.values())))} ticks)")


def _fresh(kind: str) -> TorchSource:
    """The preset at its seeded init (not the shipped weights this script is reproducing)."""
    from edgekit.loader import load_zoo

    src = load_zoo(f"zoo:{kind}:reacher", None, shipped=False)
    assert isinstance(src, TorchSource)
    return src


if __name__ == "__main__":
    raise SystemExit(main())
