"""edgekit.Policy: an artifact's tick on the robot — the same tick bench and eval run."""

from __future__ import annotations

import numpy as np
import pytest

import edgekit
from edgekit.errors import BadInputError, InputSpecError
from edgekit.loader import load
from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.runtimes import OrtRuntime


def test_act_runs_the_artifacts_own_tick(humanoid_artifact):
    policy = edgekit.Policy.load(humanoid_artifact, threads=1)
    src = load(str(humanoid_artifact))
    ref = build_program(src.spec.program)
    rt = OrtRuntime(src.files, threads=1)
    rng = np.random.default_rng(0)
    observations = [ref.sample_observation(rng) for _ in range(5)]
    policy.reset(3)
    ref.reset(3)
    for obs in observations:  # same outputs, tick for tick, history included
        got = policy.act(obs)
        want = ref.tick(TickContext(rt), obs)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)
    rep = policy.report()
    assert rep["ticks"] == 5 and rep["stats_ms"]["p50"] > 0 and rep["budget_misses"] == 0
    assert rep["budget_ms"] == pytest.approx(edgekit_target_budget(src.spec.hz))


def edgekit_target_budget(hz: float) -> float:
    from edgekit.targets import get_target

    return get_target("cpu").budget_ms(hz)


def test_a_missed_deadline_is_counted_and_reported_at_once(humanoid_artifact):
    seen: list[tuple[float, float]] = []
    policy = edgekit.Policy.load(
        humanoid_artifact, budget_ms=1e-6, on_miss=lambda ms, b: seen.append((ms, b))
    )
    obs = policy.program.sample_observation(np.random.default_rng(0))
    for _ in range(3):
        policy.act(obs)
    assert policy.misses == 3 and len(seen) == 3 and all(b == 1e-6 for _, b in seen)


def test_bad_observations_and_runtimes_are_one_line(humanoid_artifact):
    policy = edgekit.Policy.load(humanoid_artifact)
    obs = policy.program.sample_observation(np.random.default_rng(0))
    name = next(iter(obs))
    with pytest.raises(InputSpecError, match=f"input {name!r} has shape"):
        policy.act({**obs, name: obs[name][..., :1]})
    with pytest.raises(InputSpecError, match="observation is missing"):
        policy.act({})
    with pytest.raises(BadInputError, match="runtime 'cuda'"):
        edgekit.Policy.load(humanoid_artifact, runtime="cuda")
    with pytest.raises(BadInputError, match="export with --format qnn"):
        edgekit.Policy.load(humanoid_artifact, runtime="qnn")
    with pytest.raises(BadInputError, match="Policy runs exported artifacts"):
        edgekit.Policy.load("zoo:humanoid:tiny")


def test_an_artifact_this_cpu_would_compute_wrongly_is_refused(tmp_path, monkeypatch):
    """Full-range INT8 made for VNNI saturates in AVX2's kernels: Policy refuses it on such a
    CPU (the classifier sees an AVX2-only CPUID, as on a Haswell robot computer)."""
    import edgekit.bench.host as host
    from edgekit.isa import classify
    from edgekit.quantize import Int8Config, quantize

    q = quantize(load("zoo:humanoid:tiny"), tmp_path / "q",
                 Int8Config(target="cpu-x86-vnni", latency_ticks=0),
                 "calib_data/humanoid-tiny.npz")  # fmt: skip
    if not host.host_isa().saturates_u8s8:  # this CPU computes it right
        edgekit.Policy.load(q.out)
    avx2 = classify("x86_64", {"AVX2": True}, {"avx2"}, "Haswell")
    monkeypatch.setattr(host, "host_isa", lambda: avx2)
    with pytest.raises(BadInputError, match=r"quantized for x86-vnni .*saturate in this CPU's "
                       r"x86-avx2 kernels; re-quantize with --target cpu"):  # fmt: skip
        edgekit.Policy.load(q.out)
    # an artifact made for AVX2 (7-bit weights) runs there
    q2 = quantize(load("zoo:humanoid:tiny"), tmp_path / "q2",
                  Int8Config(target="cpu-x86-avx2", latency_ticks=0),
                  "calib_data/humanoid-tiny.npz")  # fmt: skip
    edgekit.Policy.load(q2.out)


def test_non_finite_observations_are_refused_unless_opted_out(humanoid_artifact):
    policy = edgekit.Policy.load(humanoid_artifact)
    obs = policy.program.sample_observation(np.random.default_rng(0))
    name = next(k for k, v in obs.items() if v.dtype.kind == "f")
    poisoned = obs[name].copy()
    poisoned.flat[0] = np.nan
    with pytest.raises(InputSpecError, match=f"observation {name!r} holds 1 NaN/Inf") as e:
        policy.act({**obs, name: poisoned})
    assert "check_finite=False" in str(e.value) and "\n" not in str(e.value)
    assert policy.ticks == 0  # refused before the tick
    raw = edgekit.Policy.load(humanoid_artifact, check_finite=False)
    out = raw.act({**obs, name: poisoned})  # the user asked: it reaches the networks
    assert any(not np.isfinite(v).all() for v in out.values())


def test_token_ids_beyond_the_vocabulary_are_edgekits_error(tmp_path):
    from edgekit.export import export_onnx

    art = tmp_path / "vla"
    export_onnx(load("zoo:vla:tiny"), art)
    policy = edgekit.Policy.load(art)
    obs = policy.program.sample_observation(np.random.default_rng(0))
    ids = next(k for k, v in obs.items() if v.dtype.kind in "iu" and k != "images")
    with pytest.raises(InputSpecError, match=f"array {ids!r} holds id 1064, outside"):
        policy.act({**obs, ids: obs[ids] * 0 + 1064})
    # below the program (a declared tick, bench --inputs): the runtime says it, not onnxruntime
    rt = OrtRuntime(load(str(art)).files, threads=1)
    feeds = {"instruction": np.full((1, 4), 999, np.int64)}
    for i in rt.sessions["policy"].get_inputs():
        if i.name != "instruction":
            shape = [d if isinstance(d, int) else 1 for d in i.shape]
            feeds[i.name] = np.zeros(shape, np.uint8 if "uint8" in i.type else np.float32)
    with pytest.raises(InputSpecError, match=r"network 'policy': an index input .*idx=999"):
        rt.run("policy", feeds)
