"""Width/depth students: a smaller model of the same kind with the teacher's io contract."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
import torch

from edgekit.loop import TickContext
from edgekit.models import build_program
from edgekit.models.base import scale_depth, scale_hidden, scale_width
from edgekit.runtimes import TorchRuntime
from edgekit.spec import ModelSpec
from edgekit.zoo import ZOO, StackModel

FACTORS = [(0.5, 0.5), (0.5, 1.0), (1.0, 0.5)]
# every kind's tiny presets (the HOVER MLP has its own) are built and ticked
TINY = [(k, p) for k in ZOO.names() for p in ZOO.get(k).presets if p.startswith("tiny")]
ALL = [(k, p) for k in ZOO.names() for p in ZOO.get(k).presets]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tick(model: StackModel, spec: ModelSpec) -> dict[str, np.ndarray]:
    ctx = TickContext(TorchRuntime(model.networks(), spec, threads=1))
    program = build_program(spec.program)
    program.reset(0)
    return program.tick(ctx, program.sample_observation(np.random.default_rng(0)))


@cache
def teacher(kind: str, preset: str) -> tuple[Any, ModelSpec, int, dict[str, np.ndarray]]:
    entry = ZOO.get(kind)
    cfg = entry.config(preset)
    model, spec = entry.build(cfg), entry.spec(cfg, preset)
    return cfg, spec, n_params(model), tick(model, spec)


def assert_same_contract(student: ModelSpec, spec: ModelSpec) -> None:
    # names, shapes, dtypes, samplers and sample sizes of every input and output
    assert student.networks == spec.networks
    assert student.program == spec.program
    assert student.programs == spec.programs


def test_helpers():
    assert scale_width(512, 0.5) == 256
    assert scale_width(100, 0.5) == 48  # 50 -> nearest multiple of 8
    assert scale_width(16, 0.25) == 8  # never below one multiple
    assert scale_width(128, 0.5, 24) == 72  # 64 -> nearest multiple of lcm(heads 3, 8)
    assert scale_width(64, 2.0) == 128  # a larger student is allowed
    assert (scale_depth(4, 0.5), scale_depth(1, 0.5), scale_depth(3, 2.0)) == (2, 1, 6)
    assert scale_hidden((512, 256, 128), 1.0, 0.5) == (512, 128)  # ends kept, middle dropped
    assert scale_hidden((512, 256, 128), 0.5, 1.0) == (256, 128, 64)
    assert scale_hidden((64, 32), 1.0, 0.5) == (64,)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            scale_width(8, bad)
        with pytest.raises(ValueError):
            scale_depth(8, bad)


@pytest.mark.parametrize(("kind", "preset"), ALL)
def test_scaling_keeps_the_contract(kind, preset):
    """Every preset, spec level only: same networks io and programs; 1x is the identity."""
    entry = ZOO.get(kind)
    cfg = entry.config(preset)
    spec = entry.spec(cfg, preset)
    assert entry.scaled(cfg, 1.0, 1.0) == cfg
    for width, depth in [*FACTORS, (2.0, 2.0)]:
        assert_same_contract(entry.spec(entry.scaled(cfg, width, depth), preset), spec)
    for width, depth in [(0, 1), (1, 0), (-0.5, 1), (1, float("nan"))]:
        with pytest.raises(ValueError):
            entry.scaled(cfg, width, depth)


@pytest.mark.parametrize(("width", "depth"), FACTORS)
@pytest.mark.parametrize(("kind", "preset"), TINY)
def test_tiny_student_builds_and_ticks(kind, preset, width, depth):
    entry = ZOO.get(kind)
    cfg, spec, teacher_params, teacher_out = teacher(kind, preset)
    scaled = entry.scaled(cfg, width, depth)
    student_spec = entry.spec(scaled, preset)
    assert_same_contract(student_spec, spec)
    model = entry.build(scaled)
    if width < 1:
        assert n_params(model) < teacher_params
    # every network, called alone on sample inputs, returns the spec's shapes and dtypes
    nets = model.networks()
    with torch.inference_mode():
        for net in spec.networks:
            feeds = net.sample_inputs()
            out = nets[net.name](*(torch.from_numpy(feeds[n]) for n in net.input_names))
            outs = out if isinstance(out, tuple) else (out,)
            assert [(tuple(o.shape), str(o.dtype).removeprefix("torch.")) for o in outs] == [
                (t.concrete_shape(net.sample_dims), t.dtype) for t in net.outputs
            ]
    # one tick of the unchanged loop program
    out = tick(model, student_spec)
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {
        k: (v.shape, v.dtype) for k, v in teacher_out.items()
    }
    assert all(np.all(np.isfinite(v)) for v in out.values())


def test_default_students_halve_the_widths():
    vla = ZOO.get("vla").scaled(ZOO.get("vla").config("default"), 0.5, 0.5)
    assert (vla.width, vla.ffn, vla.enc_layers, vla.dec_layers) == (256, 1600, 2, 1)
    assert vla.backbone_widths == (32, 64, 128, 256)
    assert (vla.chunk, vla.vocab, vla.instr_len, vla.heads) == (50, 1024, 16, 8)
    hover = ZOO.get("humanoid").scaled(ZOO.get("humanoid").config("hover"), 0.5, 1.0)
    assert hover.hidden == (256, 128, 64)
    dp = ZOO.get("diffusion-policy")
    policy = dp.scaled(dp.config("default"), 0.5, 0.5)
    assert policy.down_dims == (64, 128, 256)  # three UNet levels kept
    assert (policy.blocks, policy.feature_dim) == ((1, 1, 1, 1), 64)
    wm = ZOO.get("world-model")
    rssm = wm.scaled(wm.config("default"), 0.5, 0.5)
    assert (rssm.hidden, rssm.units, rssm.deter, rssm.depth) == (128, 128, 2048, 16)


@pytest.mark.parametrize("kind", ZOO.names())
def test_default_student_is_smaller(kind):
    """Default models build in well under a second each, so count their parameters."""
    entry = ZOO.get(kind)
    cfg = entry.config("default")
    assert n_params(entry.build(entry.scaled(cfg, 0.5, 0.5))) < n_params(entry.build(cfg))
