"""``vla-flow``: the KV-cached tick (prefix once, action expert K times), its flow convention,
the chunk queue, the export of both networks with the cache as explicit tensors, and the
refusal of an expert that does not read the prefix's cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgekit.artifacts import sha256_file
from edgekit.errors import BadInputError
from edgekit.export import export_onnx
from edgekit.loader import TorchSource, load, state_sha256
from edgekit.loop import TickContext
from edgekit.loop.capture import RecordingRuntime
from edgekit.models import build_program
from edgekit.models.vla_flow.program import check_kv
from edgekit.runtimes import OrtRuntime, TorchRuntime
from edgekit.spec import ProgramSpec
from edgekit.zoo import ZOO

from .conftest import ROOT, error_lines

REF = "zoo:vla-flow:tiny"


@pytest.fixture(scope="module")
def src() -> TorchSource:
    s = load(REF)
    assert isinstance(s, TorchSource)
    return s


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vla-flow") / "art"
    res = export_onnx(load(REF), out)
    assert res.passed and res.written
    return out


def program(src: TorchSource, **params: object):
    prog = build_program(ProgramSpec("vla-flow", {**src.spec.program.params, **params}))
    prog.reset(0)
    return prog


def obs(prog, seed: int = 0):
    return prog.sample_observation(np.random.default_rng(seed))


def torch_ctx(src: TorchSource) -> TickContext:
    return TickContext(TorchRuntime(src.networks, src.spec, threads=1))


def test_a_planning_tick_returns_the_chunk_and_its_first_action(src):
    cfg = ZOO.get("vla-flow").config("tiny")
    prog, ctx = program(src), torch_ctx(src)
    out = prog.tick(ctx, obs(prog))
    assert out["action_chunk"].shape == (cfg.chunk, cfg.action_dim) == (50, cfg.action_dim)
    assert out["action"].shape == (cfg.action_dim,)
    assert out["action_chunk"].dtype == out["action"].dtype == np.float32
    np.testing.assert_array_equal(out["action"], out["action_chunk"][0])
    assert np.all(np.isfinite(out["action_chunk"]))
    assert np.all(np.abs(out["action_chunk"]) <= cfg.action_limit + 1e-6)
    # the cache: one prefix call per plan, one expert call per flow step
    assert ctx.calls == prog.calls_per_tick() == {"prefix": 1, "expert": cfg.steps}


def test_the_queue_pops_one_action_per_tick_and_replans_when_empty(src):
    prog, ctx = program(src, n_action_steps=3), torch_ctx(src)
    seen = []
    for i in range(7):
        ctx.clear()
        seen.append((prog.tick(ctx, obs(prog, i)), dict(ctx.calls)))
    planned = [bool(calls) for _, calls in seen]
    assert planned == [True, False, False, True, False, False, True]
    first, second = seen[0][0]["action_chunk"], seen[3][0]["action_chunk"]
    for i in range(3):
        np.testing.assert_array_equal(seen[i][0]["action"], first[i])
        np.testing.assert_array_equal(seen[3 + i][0]["action"], second[i])
    assert not np.allclose(first, second)  # a new observation and new noise: a new plan


@pytest.mark.parametrize("steps", [1, 3])
def test_the_cache_is_computed_once_and_gives_the_recomputed_actions(src, steps):
    cached, recomputed = program(src, steps=steps), program(src, steps=steps, recompute_prefix=True)
    ctx_a, ctx_b = torch_ctx(src), torch_ctx(src)
    o = obs(cached)
    a, b = cached.tick(ctx_a, o), recomputed.tick(ctx_b, o)
    assert ctx_a.calls == cached.calls_per_tick() == {"prefix": 1, "expert": steps}
    assert ctx_b.calls == recomputed.calls_per_tick() == {"prefix": steps, "expert": steps}
    np.testing.assert_allclose(a["action_chunk"], b["action_chunk"], rtol=0, atol=1e-6)


def test_flow_goes_from_noise_at_t1_to_actions_at_t0_in_euler_steps(src):
    """pi0's convention: the first call sees t = 1 and pure noise; x <- x + dt * v, dt = -1/K."""
    far = [1e9] * src.spec.program.params["action_dim"]
    prog = program(src, steps=4, action_low=[-x for x in far], action_high=far)
    rec = RecordingRuntime(TorchRuntime(src.networks, src.spec, threads=1))
    chunk = prog.tick(TickContext(rec), obs(prog))["action_chunk"]
    feeds = rec.feeds["expert"]
    assert [float(f["t"][0]) for f in feeds] == [1.0, 0.75, 0.5, 0.25]
    noise = np.random.default_rng(0).standard_normal(feeds[0]["x_t"].shape).astype(np.float32)
    np.testing.assert_array_equal(feeds[0]["x_t"], noise)  # the program's seeded noise
    runtime = TorchRuntime(src.networks, src.spec, threads=1)
    x = feeds[0]["x_t"]
    for f in feeds:
        np.testing.assert_allclose(f["x_t"], x, atol=1e-6)
        x = x - 0.25 * runtime.run("expert", f)["velocity"]
    np.testing.assert_allclose(chunk, x[0], atol=1e-5)


def test_the_expert_attends_to_the_cache(src):
    net = src.spec.network("expert")
    feeds = net.sample_inputs(0)
    runtime = TorchRuntime(src.networks, src.spec, threads=1)
    v = runtime.run("expert", feeds)["velocity"]
    np.testing.assert_array_equal(runtime.run("expert", feeds)["velocity"], v)
    for name in ("prefix_keys", "prefix_values"):
        other = {**feeds, name: feeds[name] + np.float32(0.5)}
        assert not np.allclose(runtime.run("expert", other)["velocity"], v, atol=1e-4)


def test_export_has_the_cache_as_explicit_tensors_and_parity(art):
    manifest = json.loads((art / "edgekit.json").read_text())
    rows = {(r["scope"], r["name"], r["output"]): r for r in manifest["checks"]["parity"]["rows"]}
    assert manifest["checks"]["parity"]["passed"] is True
    for key in [
        ("network", "prefix", "prefix_keys"),
        ("network", "prefix", "prefix_values"),
        ("network", "expert", "velocity"),
        ("tick", "vla-flow", "action_chunk"),
        ("tick", "vla-flow", "action"),
    ]:
        assert rows[key]["ok"], key

    def io(values):
        return {
            v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in values
        }

    prefix = onnx.load(str(art / "prefix.onnx")).graph
    expert = onnx.load(str(art / "expert.onnx")).graph
    cfg = ZOO.get("vla-flow").config("tiny")
    kv = ["batch", *cfg.kv_shape]
    assert io(prefix.output) == {"prefix_keys": kv, "prefix_values": kv}
    ins = io(expert.input)
    assert list(ins) == ["x_t", "t", "prefix_keys", "prefix_values"]
    assert ins["prefix_keys"] == ins["prefix_values"] == kv


def test_the_whole_tick_on_onnxruntime_matches_torch_with_and_without_the_cache(src, art):
    files = {n: art / f"{n}.onnx" for n in ("prefix", "expert")}
    for recompute in (False, True):
        outs = []
        for runtime in (OrtRuntime(files, threads=1), TorchRuntime(src.networks, src.spec, 1)):
            prog = program(src, steps=3, recompute_prefix=recompute)
            outs.append(prog.tick(TickContext(runtime), obs(prog))["action_chunk"])
        np.testing.assert_allclose(outs[0], outs[1], atol=1e-4)


def test_bench_shows_prefix_and_expert_and_loop_steps_sets_k(cli, art, tmp_path):
    report = tmp_path / "b.json"
    r = cli(
        "bench", art, "--program", "replan", "--loop", "steps=2", "--ticks", "3",
        "--warmup", "1", "--budget-ms", "60000", "--json", report,
    )  # fmt: skip
    assert r.code == 0, r.err
    rep = json.loads(report.read_text())
    assert rep["model"]["calls_per_tick"] == {"prefix": 1, "expert": 2}
    stages = {s["name"]: s for s in rep["stages"]}
    assert stages["prefix"]["kind"] == stages["expert"]["kind"] == "network"
    assert (stages["prefix"]["calls"], stages["expert"]["calls"]) == (1, 2)
    assert stages["prefix"]["p50_ms"] > 0 and stages["expert"]["p50_ms"] > 0
    assert rep["planning_ticks"] is None  # replan: every tick runs the networks
    r = cli(
        "bench", art, "--loop", "recompute_prefix=true", "--loop", "steps=3", "--ticks", "2",
        "--warmup", "0", "--budget-ms", "60000", "--json", report,
    )  # fmt: skip
    assert r.code == 0, r.err
    assert json.loads(report.read_text())["model"]["calls_per_tick"] == {"prefix": 3, "expert": 3}


def test_estimate_splits_prefix_and_expert_calls(cli, art, tmp_path):
    report = tmp_path / "e.json"
    r = cli("bench", art, "--target", "jetson-orin-nx", "--loop", "steps=3", "--json", report)
    assert r.code in (0, 1), r.err  # a verdict either way; the estimate itself is the point
    calls = {c["network"]: c for c in json.loads(report.read_text())["estimate"]["calls"]}
    assert (calls["prefix"]["calls"], calls["expert"]["calls"]) == (1, 3)
    assert calls["prefix"]["flops"] > 0 and calls["expert"]["flops"] > 0


@pytest.mark.parametrize(
    "value",
    ["steps=0", "steps=-2", "steps=1.5", "steps=two", "recompute_prefix=1", "n_action_steps=51"],
)
def test_a_bad_loop_parameter_is_one_line_exit_2(cli, art, tmp_path, value):
    report = tmp_path / "b.json"
    r = cli("bench", art, "--loop", value, "--ticks", "2", "--json", report)
    assert r.code == 2, r.err
    lines = error_lines(r.err)
    assert len(lines) == 1 and lines[0].startswith("error: --loop"), r.err
    assert not report.exists()


def _swap_expert(art: Path, tmp_path: Path, **changes: object) -> Path:
    """The artifact with its expert replaced by one exported for another config (manifest
    hashes and the expert's io spec updated, as a user swapping in their own expert would)."""
    entry = ZOO.get("vla-flow")
    cfg = replace(entry.config("tiny"), **changes)
    model, spec = entry.build(cfg), entry.spec(cfg, "tiny")
    other = TorchSource("other", spec, model, model.networks(), state_sha256(model))
    export_onnx(other, tmp_path / "other", check_parity=False)
    bad = tmp_path / "bad"
    shutil.copytree(art, bad)
    shutil.copy(tmp_path / "other" / "expert.onnx", bad / "expert.onnx")
    manifest = json.loads((bad / "edgekit.json").read_text())
    manifest["files"]["expert"]["sha256"] = sha256_file(bad / "expert.onnx")
    nets = manifest["model"]["networks"]
    nets[[n["name"] for n in nets].index("expert")] = spec.network("expert").to_dict()
    (bad / "edgekit.json").write_text(json.dumps(manifest))
    return bad


@pytest.mark.parametrize("changes", [{"instr_len": 6}, {"layers": 3}, {"head_dim": 8}])
def test_an_expert_for_another_kv_cache_is_one_line_exit_2(cli, art, tmp_path, changes):
    bad = _swap_expert(art, tmp_path, **changes)
    report, out = tmp_path / "b.json", tmp_path / "re-exported"
    for args in (("bench", bad, "--ticks", "2", "--json", report), ("export", bad, "--out", out)):
        r = cli(*args)
        assert r.code == 2, r.err
        lines = error_lines(r.err)
        assert len(lines) == 1 and "KV cache mismatch" in lines[0], r.err
        assert "expert input 'prefix_keys'" in lines[0]
    assert not report.exists() and not out.exists()


def test_check_kv_accepts_the_zoo_pair_and_refuses_a_missing_cache(src):
    nets = {n.name: n for n in src.spec.networks}
    check_kv(nets, "here")  # the zoo's own pair
    with pytest.raises(BadInputError, match="needs networks 'prefix' and 'expert'"):
        check_kv({"prefix": nets["prefix"]}, "here")
    expert = nets["expert"]
    unwired = replace(expert, inputs=tuple(t for t in expert.inputs if t.name != "prefix_values"))
    with pytest.raises(BadInputError, match="no expert input 'prefix_values'"):
        check_kv({**nets, "expert": unwired}, "here")


def test_the_program_module_imports_no_torch():
    code = (
        "import sys, edgekit.models.vla_flow.program as p, edgekit.models as m; "
        "assert 'torch' not in sys.modules, 'torch imported'; print(p.VLAFlowProgram.name)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0 and r.stdout.strip() == "vla-flow", r.stderr
