"""The hostile-input matrix: damaged manifests and out-of-range options, each refused in one
line (exit 2, naming the field or option), and the same command succeeding once fixed.

Each case stays small (tiny zoo models, two bench ticks, two training steps) so the whole file
runs in well under a minute.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.hostile import QUICK_BENCH, Hostile, Workspace

ROOT = Path(__file__).resolve().parents[1]
VLA_CALIB = ROOT / "calib_data" / "vla-tiny.npz"
NO_LATENCY = ("--latency-ticks", "0")


# --- workspace helpers ----------------------------------------------------------------------


def _copy_artifact(w: Workspace) -> None:
    shutil.copytree(w.artifact, w.dir / "art")


def _edit_manifest(edit: Callable[[dict[str, Any]], None]) -> Callable[[Workspace], None]:
    def setup(w: Workspace) -> None:
        _copy_artifact(w)
        path = w.dir / "art" / "edgekit.json"
        m = json.loads(path.read_text())
        edit(m)
        path.write_text(json.dumps(m, indent=2) + "\n")

    return setup


def _restore(name: str) -> Callable[[Workspace], None]:
    def fix(w: Workspace) -> None:
        shutil.copy2(w.artifact / name, w.dir / "art" / name)

    return fix


def _tamper_onnx(w: Workspace) -> None:
    _copy_artifact(w)
    with open(w.dir / "art" / "policy.onnx", "ab") as f:
        f.write(b"\0")


def _weights(w: Workspace, ref: str, poison: bool) -> None:
    """The shipped/init weights of ``ref`` as safetensors; ``poison``: one NaN in a weight."""
    from safetensors.torch import save_file

    from edgekit.loader import load

    state = {k: v.clone().contiguous() for k, v in load(ref).module.state_dict().items()}
    if poison:
        name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() > 1)
        state[name].view(-1)[0] = float("nan")
    save_file(state, str(w.dir / "w.safetensors"))


def _embedding_onnx(w: Workspace, poison: bool = False) -> None:
    """A one-Gather ONNX model: ids [batch, 4] (int64) -> rows of a 10 x 3 embedding table."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.arange(30, dtype=np.float32).reshape(10, 3)
    if poison:
        table[2, 1] = np.inf
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"])],
        "emb",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 4])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", 4, 3])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(w.dir / "emb.onnx"))


def _ids(w: Workspace, top: int) -> None:
    ids = np.array([[0, 3, 9, top], [1, 2, 3, 4]], dtype=np.int64)
    np.savez(w.dir / "ids.npz", ids=ids)


def _vla_calib(w: Workspace, token: int) -> None:
    z = dict(np.load(VLA_CALIB))
    z["instruction"][3, 1] = token
    np.savez(w.dir / "vla.npz", **z)


RECIPE = """schema_version: 1
name: hostile
model: zoo:humanoid
stages:
  - stage: bench
    ticks: 2
    warmup: 0
targets:
  cpu: {{budget_ms: {budget}}}
"""


def _recipe(budget: str) -> Callable[[Workspace], None]:
    def write(w: Workspace) -> None:
        (w.dir / "r.yaml").write_text(RECIPE.format(budget=budget))

    return write


UNEXPORTABLE = """import torch
from torch import nn

from edgekit.spec import TensorSpec


class Branchy(nn.Module):
    def __init__(self, branch: bool) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.branch = branch

    def forward(self, x):
        y = self.lin(x)
        if self.branch and y.sum() > 0:  # data-dependent control flow: torch.export refuses
            return y * 2
        return y


def bad():
    return Branchy(True), [TensorSpec("x", ("batch", 4))]


def good():
    return Branchy(False), [TensorSpec("x", ("batch", 4))]
"""


def _factory(w: Workspace) -> None:
    (w.dir / "m.py").write_text(UNEXPORTABLE)


def _fake_checkpoint(w: Workspace) -> None:
    (w.dir / "s.ckpt").mkdir()
    (w.dir / "s.ckpt" / "state.json").write_text("{}\n")


def _distill(w: Workspace, *extra: str) -> list[Any]:
    return [
        "distill", "zoo:humanoid:tiny", "--out", w.dir / "s", "--width", "0.5",
        "--data", w.calib, "--steps", "2", *NO_LATENCY, *extra,
    ]  # fmt: skip


def _bench(model: Any, *extra: Any) -> list[Any]:
    return ["bench", model, *extra, *QUICK_BENCH]


def _eval(w: Workspace) -> list[Any]:
    weights = w.dir / "w.safetensors"
    return ["eval", "zoo:humanoid:reacher", "-n", "1", "--teacher", "none", "--weights", weights]


def _quantize(w: Workspace, model: Any, calib: Path | None = None) -> list[Any]:
    return ["quantize", model, "-o", w.dir / "q", "--calib", calib or w.calib, *NO_LATENCY]


def _pop_hash(m: dict[str, Any]) -> None:
    del m["files"]["policy"]["sha256"]


def _string_version(m: dict[str, Any]) -> None:
    m["schema_version"] = "1"


def _rename_input(m: dict[str, Any]) -> None:
    m["model"]["networks"][0]["inputs"][0]["name"] = "obs"


CASES = [
    # --- manifests: validated on load, errors name the field --------------------------------
    Hostile(
        "manifest-missing-hash",
        bad=lambda w: ["bench", w.dir / "art", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.dir / "art", *QUICK_BENCH],
        needles=("edgekit.json", "files.policy.sha256: missing"),
        setup=_edit_manifest(_pop_hash),
        fix=_restore("edgekit.json"),
    ),
    Hostile(
        "manifest-string-schema-version",
        bad=lambda w: ["export", w.dir / "art", "--out", w.dir / "o"],
        fixed=lambda w: ["export", w.dir / "art", "--out", w.dir / "o"],
        needles=("edgekit.json", "schema_version", "integer"),
        setup=_edit_manifest(_string_version),
        fix=_restore("edgekit.json"),
    ),
    Hostile(
        "manifest-io-mismatch",
        bad=lambda w: _quantize(w, w.dir / "art"),
        fixed=lambda w: _quantize(w, w.dir / "art"),
        needles=("edgekit.json", "files.policy", "obs_history"),
        setup=_edit_manifest(_rename_input),
        fix=_restore("edgekit.json"),
    ),
    Hostile(
        "manifest-tampered-file",
        bad=lambda w: ["bench", w.dir / "art", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.dir / "art", *QUICK_BENCH],
        needles=("files.policy.sha256", "does not match"),
        setup=_tamper_onnx,
        fix=_restore("policy.onnx"),
    ),
    # --- bench: NaN/Inf, absurd tick counts, --loop ------------------------------------------
    Hostile(
        "bench-nan-hz",
        bad=lambda w: ["bench", w.artifact, "--hz", "nan", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--hz", "50", *QUICK_BENCH],
        needles=("--hz", "finite"),
    ),
    Hostile(
        "bench-inf-budget",
        bad=lambda w: ["bench", w.artifact, "--ticks", "2", "--warmup", "0", "--budget-ms", "inf"],
        fixed=lambda w: ["bench", w.artifact, *QUICK_BENCH],
        needles=("--budget-ms", "finite"),
    ),
    Hostile(
        "bench-absurd-ticks",
        bad=lambda w: ["bench", w.artifact, "--ticks", "1000000000000", "--warmup", "0"],
        fixed=lambda w: ["bench", w.artifact, *QUICK_BENCH],
        needles=("--ticks", "1,000,000"),
    ),
    Hostile(
        "loop-not-a-number",
        bad=lambda w: _bench("zoo:diffusion-policy:tiny", "--loop", "num_inference_steps=abc"),
        fixed=lambda w: _bench("zoo:diffusion-policy:tiny", "--loop", "num_inference_steps=2"),
        needles=("--loop num_inference_steps=abc", "integer"),
    ),
    Hostile(
        "loop-zero",
        bad=lambda w: ["bench", w.artifact, "--loop", "context=0", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--loop", "context=4", *QUICK_BENCH],
        needles=("--loop context=0", ">= 1"),
    ),
    Hostile(
        "loop-negative",
        bad=lambda w: ["bench", w.artifact, "--loop", "context=-3", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--loop", "context=4", *QUICK_BENCH],
        needles=("--loop context=-3",),
    ),
    Hostile(
        "loop-unknown-key",
        bad=lambda w: ["bench", w.artifact, "--loop", "steps=4", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--loop", "context=4", *QUICK_BENCH],
        needles=("--loop steps", "known: "),
    ),
    Hostile(
        "loop-missing-equals",
        bad=lambda w: ["bench", w.artifact, "--loop", "context", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--loop", "context=4", *QUICK_BENCH],
        needles=("--loop", "KEY=VALUE"),
    ),
    # --- weights and integer inputs ----------------------------------------------------------
    Hostile(
        "nan-weights-safetensors",
        bad=lambda w: _bench("zoo:humanoid:tiny", "--weights", w.dir / "w.safetensors"),
        fixed=lambda w: _bench("zoo:humanoid:tiny", "--weights", w.dir / "w.safetensors"),
        needles=("--weights", "NaN/Inf", "tensor 'policy."),
        setup=lambda w: _weights(w, "zoo:humanoid:tiny", poison=True),
        fix=lambda w: _weights(w, "zoo:humanoid:tiny", poison=False),
    ),
    Hostile(
        "inf-onnx-initializer",
        bad=lambda w: ["export", w.dir / "emb.onnx", "--out", w.dir / "o"],
        fixed=lambda w: ["export", w.dir / "emb.onnx", "--out", w.dir / "o"],
        needles=("emb.onnx", "tensor 'table'", "NaN/Inf"),
        setup=lambda w: _embedding_onnx(w, poison=True),
        fix=_embedding_onnx,
    ),
    Hostile(
        "token-ids-beyond-embedding-inputs",
        bad=lambda w: ["bench", w.dir / "emb.onnx", "--inputs", w.dir / "ids.npz", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.dir / "emb.onnx", "--inputs", w.dir / "ids.npz", *QUICK_BENCH],
        needles=("--inputs", "'ids'", "id 10", "[0, 10)"),
        setup=lambda w: (_embedding_onnx(w), _ids(w, 10)),
        fix=lambda w: _ids(w, 9),
    ),
    Hostile(
        "token-ids-beyond-vocab-calibration",
        bad=lambda w: _quantize(w, "zoo:vla:tiny", w.dir / "vla.npz"),
        fixed=lambda w: _quantize(w, "zoo:vla:tiny", w.dir / "vla.npz"),
        needles=("vla.npz", "'instruction'", "id 5000", "[0, 64)"),
        setup=lambda w: _vla_calib(w, 5000),
        fix=lambda w: _vla_calib(w, 63),
    ),
    # --- quantize / distill / run / recipe check / export -----------------------------------
    Hostile(
        "quantize-negative-latency-ticks",
        bad=lambda w: [*_quantize(w, w.artifact), "--latency-ticks", "-1"],
        fixed=lambda w: _quantize(w, w.artifact),
        needles=("--latency-ticks -1",),
    ),
    Hostile(
        "distill-resume-without-checkpoint",
        bad=lambda w: _distill(w, "--resume"),
        fixed=lambda w: _distill(w),
        needles=("--resume", "no checkpoint", "s.ckpt"),
    ),
    Hostile(
        "distill-rerun-over-checkpoint",
        bad=lambda w: _distill(w),
        fixed=lambda w: _distill(w, "--force"),
        needles=("s.ckpt", "--resume", "--force"),
        setup=_fake_checkpoint,
    ),
    Hostile(
        "run-unknown-preset",
        bad=lambda w: ["run", w.dir / "r.yaml", "-o", w.dir / "run", "--preset", "nope", "-q"],
        fixed=lambda w: ["run", w.dir / "r.yaml", "-o", w.dir / "run", "--preset", "tiny", "-q"],
        needles=("--preset 'nope'", "known: "),
        setup=_recipe("60000"),
    ),
    Hostile(
        "recipe-nan-budget",
        bad=lambda w: ["recipe", "check", w.dir / "r.yaml"],
        fixed=lambda w: ["recipe", "check", w.dir / "r.yaml"],
        needles=("r.yaml", "budget_ms"),
        setup=_recipe(".nan"),
        fix=_recipe("16"),
    ),
    Hostile(
        "export-unexportable-keeps-torch-logs-quiet",
        bad=lambda w: ["export", f"{w.dir / 'm.py'}:bad", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{w.dir / 'm.py'}:good", "--out", w.dir / "o"],
        needles=("torch.onnx.export failed", "m.py"),
        setup=_factory,
    ),
]

if importlib.util.find_spec("mujoco") and importlib.util.find_spec("gymnasium"):
    CASES.append(
        Hostile(
            "eval-nan-weights",
            bad=lambda w: _eval(w),
            fixed=lambda w: _eval(w),
            needles=("--weights", "NaN/Inf"),
            setup=lambda w: _weights(w, "zoo:humanoid:reacher", poison=True),
            fix=lambda w: _weights(w, "zoo:humanoid:reacher", poison=False),
        )
    )
    CASES.append(
        Hostile(
            "eval-episodes-beyond-the-maximum",  # refused before any model loads
            bad=lambda w: ["eval", "zoo:humanoid:reacher", "-n", "100000000", "--teacher", "none"],
            fixed=lambda w: ["eval", "zoo:humanoid:reacher", "-n", "1", "--teacher", "none"],
            needles=("--episodes 100000000", "10,000"),
        )
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile(case: Hostile, hostile: Callable[[Hostile], None]) -> None:
    hostile(case)


def test_manifest_written_by_this_edgekit_validates(humanoid_artifact: Path) -> None:
    """The schema is exactly the shape edgekit writes (no field added, none missing)."""
    from edgekit.artifacts import MANIFEST, SCHEMA_VERSION
    from edgekit.manifest_schema import parse_manifest

    path = humanoid_artifact / MANIFEST
    model = parse_manifest(path.read_text(), path, SCHEMA_VERSION)
    assert model.model_dump(mode="json") == json.loads(path.read_text())
