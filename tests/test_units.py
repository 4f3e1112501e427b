"""Small units: registry, spec round-trips, samplers."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import BadInputError
from edgekit.registry import Registry
from edgekit.spec import ModelSpec, TensorSpec
from edgekit.targets import TARGETS


def test_registry_aliases_duplicates_and_lookup_errors():
    reg: Registry[int] = Registry("thing")
    reg.add("Orin_NX", 1, aliases=("nx",))
    assert reg.get("orin-nx") == 1 and reg.get("NX") == 1
    with pytest.raises(ValueError, match="duplicate"):
        reg.add("nx", 2)
    with pytest.raises(BadInputError, match="unknown thing 'orin'; known: orin-nx"):
        reg.get("orin")


def test_target_aliases():
    assert TARGETS.get("orin-nx").name == "jetson-orin-nx"
    assert TARGETS.get("rb5").name == "qrb5165"


def test_mask_sampler_never_masks_everything():
    t = TensorSpec("pad_mask", ("batch", 5), "bool")
    m = t.sample(np.random.default_rng(0), {"batch": 500})
    assert m.dtype == bool and not m.all(axis=1).any() and not m[:, 0].any()


def test_model_spec_roundtrip():
    from edgekit.loader import load

    src = load("zoo:humanoid:tiny")
    d = src.spec.to_dict()
    assert ModelSpec.from_dict(d).to_dict() == d


def test_python_api_mirrors_the_cli(tmp_path):
    import edgekit
    from edgekit.quantize import Int8Config

    art = edgekit.export("zoo:humanoid:tiny", tmp_path / "fp32")
    assert art.manifest.stage == "export"
    q = edgekit.quantize(
        str(tmp_path / "fp32"),
        tmp_path / "int8",
        Int8Config(latency_ticks=0),
        calib="synthetic",
    )
    assert q.passed and q.report["calibration"]["source"] == "synthetic"
    from edgekit.bench import BenchConfig

    report = edgekit.bench(str(tmp_path / "int8"), BenchConfig(ticks=2, warmup=0, budget_ms=6e4))
    assert report.passed and report.model["kind"] == "humanoid"


def test_int_spec_needs_a_range():
    from edgekit.errors import InputSpecError

    with pytest.raises(InputSpecError, match=r"'tokens'.*give low/high.*high=32000"):
        TensorSpec("tokens", ("batch", 8), "int64")  # would sample only 0 from [0, 1)
    with pytest.raises(InputSpecError, match=r"'ids'.*empty"):
        TensorSpec("ids", (4,), "int32", low=5, high=5)
    t = TensorSpec("tokens", ("batch", 8), "int64", high=32000)
    x = t.sample(np.random.default_rng(0), {"batch": 4})
    assert t.low == 0 and x.dtype == np.int64 and len(np.unique(x)) > 1 and x.max() < 32000
    # manifests always hold the range; an old one may hold [0, 1) for an int output: it loads
    old = {"name": "best", "shape": [1], "dtype": "int64", "sampler": "int", "low": 0.0}
    assert TensorSpec.from_dict({**old, "high": 1.0}).high == 1.0
    assert TensorSpec("x", (2,)).to_dict()["low"] == 0.0  # defaults unchanged elsewhere
