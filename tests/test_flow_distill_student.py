"""A narrower flow-matching VLA, then its 1-step sampler: distillations chain.

An ``edgekit distill`` output reloads as a PyTorch model (its zoo config + student.safetensors),
and ``--denoise-steps N --student NARROW`` trains the narrow student's prefix *and* expert
through its N-step sampler against the teacher's K-step chunks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from edgekit.artifacts import load_artifact
from edgekit.calib import synthesize_for_program
from edgekit.distill import DistillConfig, distill
from edgekit.distill.api import checkpoint_dir
from edgekit.distill.rollout import RolloutObjective
from edgekit.distill.steps_flow import (
    PrefixRolloutObjective,
    _call,
    flow_sampler,
    prefix_cache,
    prefix_inputs,
)
from edgekit.loader import load
from edgekit.loader.student import torch_from_artifact
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime

REF = "zoo:vla-flow:tiny"
BASE = {"batch_size": 8, "latency_ticks": 0, "checkpoint_every": 0}


@pytest.fixture(scope="module")
def narrow(tmp_path_factory) -> Path:
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("narrow") / "w05"
    cfg = DistillConfig(width=0.5, depth=0.5, steps=20, **BASE)  # type: ignore[arg-type]
    result = distill(REF, out, cfg, "synthetic")
    assert result.written
    return out


def _observations(n: int = 6) -> list[dict[str, np.ndarray]]:
    program = build_program(load(REF).spec.program)
    return list(synthesize_for_program(program, n=n, seed=3).observations())


def test_distilled_artifact_reloads_as_its_torch_model(narrow):
    src = torch_from_artifact(narrow)
    art = load_artifact(narrow)
    assert src.spec.preset == "tiny-w0.5-d0.5" and src.weights == str(
        narrow / "student.safetensors"
    )
    assert src.spec.config["width"] == 16  # the tiny preset's 32, halved
    rt = OrtRuntime({n: art.file(n) for n in art.manifest.files}, threads=1)
    rng = np.random.default_rng(0)
    for net in art.manifest.spec.networks:
        feeds = {}
        for t in net.inputs:
            shape = [2 if isinstance(d, str) else d for d in t.shape]
            feeds[t.name] = (
                rng.integers(0, int(t.high), shape).astype(np.int64)
                if t.dtype == "int64"
                else rng.uniform(-1, 1, shape).astype(np.float32)
            )
        got = rt.run(net.name, feeds)
        with torch.inference_mode():
            ref = src.networks[net.name](*(torch.from_numpy(feeds[t.name]) for t in net.inputs))
        ref = ref if isinstance(ref, tuple) else (ref,)
        for t, r in zip(net.outputs, ref, strict=True):
            np.testing.assert_allclose(got[t.name], r.numpy(), atol=1e-4, rtol=1e-3)


def test_a_distilled_student_step_distils_again(narrow, tmp_path):
    out = tmp_path / "chain"
    cfg = DistillConfig(denoise_steps=1, steps=5, **BASE)  # type: ignore[arg-type]
    result = distill(str(narrow), out, cfg, "synthetic")
    m = json.loads((out / "edgekit.json").read_text())
    assert result.written and m["source"]["ref"] == str(narrow)
    assert m["model"]["preset"] == "tiny-w0.5-d0.5"
    assert m["model"]["programs"]["distilled1"]["params"]["steps"] == 1


def test_prefix_objective_targets_are_the_teachers_rollouts():
    """From the prefix's inputs the objective's teacher states equal the KV-cache objective's
    (same teacher prefix, same rollout); the student's own prefix gets gradients."""
    src = load(REF)
    params = dict(src.spec.program.params)
    obs = _observations()
    shape = (int(params["chunk"]), int(params["action_dim"]))
    kv = RolloutObjective(
        src.networks["expert"], _call, prefix_cache(src.networks["prefix"], params, obs), shape,
        flow_sampler(10), flow_sampler(1),
    )  # fmt: skip
    own = PrefixRolloutObjective(
        src.networks, src.networks, prefix_inputs(params, obs), shape, flow_sampler(10),
        flow_sampler(1), jitter=0.0, pool=0, pool_seed=0,
    )  # fmt: skip
    x = torch.randn((len(obs), *shape), generator=torch.Generator().manual_seed(0))
    want = kv.teacher_states(x, kv.conds)[-1]
    got = own.teacher_states(x, own.conds)[-1]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    loss = own(own.batch(x, own.conds))
    loss.backward()
    student = own.student["prefix"]  # type: ignore[index]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_own_student_trains_prefix_and_expert(narrow, tmp_path):
    out = tmp_path / "own"
    cfg = DistillConfig(denoise_steps=1, student=str(narrow), steps=30, lr=1e-3, **BASE)  # type: ignore[arg-type]
    result = distill(REF, out, cfg, "synthetic")
    assert result.written
    rep = result.report
    assert "prefix and expert of the student" in rep["student"]["how"]
    assert rep["training"]["loss_last"] < rep["training"]["loss_first"]
    m = json.loads((out / "edgekit.json").read_text())
    assert m["model"]["preset"] == "tiny-w0.5-d0.5" and m["source"]["ref"] == REF
    before, after = (
        load_file(str(narrow / "student.safetensors")),
        load_file(str(out / "student.safetensors")),
    )
    for net in ("prefix", "expert"):
        keys = [k for k in before if k.startswith(net + ".")]
        assert keys and any(not torch.equal(before[k], after[k]) for k in keys), net
    # the student runs under the 1-step program: one prefix and one expert call per plan
    assert load(str(out)).spec.program.params["steps"] == 1


def test_tampered_student_weights_refused(cli, narrow, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in narrow.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    w = bad / "student.safetensors"
    w.write_bytes(w.read_bytes()[:-8] + b"\0" * 8)
    out = tmp_path / "s"
    r = cli("distill", bad, "--denoise-steps", "1", "--data", "synthetic", "--out", out)
    assert r.code == 2 and "does not match its sha256" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize(
    ("teacher", "extra", "needle"),
    [
        ("zoo:diffusion-policy:tiny", ["--student", "NARROW"], "only a flow-matching VLA"),
        (REF, ["--width", "0.5"], "give it as --student"),
        (REF, ["--student", "zoo:vla-flow:reacher"], "network 'prefix' input"),
    ],
)
def test_bad_student_one_line_exit_2(cli, narrow, tmp_path, teacher, extra, needle):
    out = tmp_path / "s"
    extra = [str(narrow) if a == "NARROW" else a for a in extra]
    r = cli("distill", teacher, "--denoise-steps", "1", *extra, "--data", "synthetic",
            "--steps", "2", "--out", out)  # fmt: skip
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err and not out.exists() and not checkpoint_dir(out).exists()


def test_an_export_artifact_is_not_a_teacher(cli, tmp_path):
    exp = tmp_path / "exp"
    assert cli("export", REF, "--out", exp).code == 0
    r = cli("distill", exp, "--denoise-steps", "1", "--data", "synthetic", "--out", tmp_path / "s")
    assert r.code == 2 and "has ONNX networks only" in r.err, r.err
