"""Reading ONNX files safely: parse, check external-data paths, check the model, describe its io.

External data is an attack surface: a location such as ``../../etc/passwd`` would make the
loader read any file the process can. Locations must stay inside the model's folder and exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ModelLoadError
from edgekit.spec import NetworkSpec, TensorSpec

FLOAT_TYPES = (1, 10, 11, 16)  # onnx.TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _external_tensors(model: Any) -> Iterator[Any]:
    """Every tensor of ``model`` whose data is in an external file, as ``onnx.load`` reads
    them: initializers and attribute tensors, in subgraphs (If/Loop bodies) and functions."""
    from onnx.external_data_helper import uses_external_data

    def in_nodes(nodes: Any) -> Iterator[Any]:
        for node in nodes:
            for a in node.attribute:
                if a.HasField("t"):
                    yield a.t
                yield from a.tensors
                for g in [a.g] if a.HasField("g") else a.graphs:
                    yield from g.initializer
                    yield from in_nodes(g.node)

    tensors = [*model.graph.initializer, *in_nodes(model.graph.node)]
    tensors += [t for f in model.functions for t in in_nodes(f.node)]
    return (t for t in tensors if uses_external_data(t))


def onnx_bytes(path: Path) -> int:
    """Size on disk of an ONNX model: the file plus each external-data file its tensors
    reference (counted once, however many tensors share it; only files inside its folder); of
    an OpenVINO IR ``.xml``: it and its ``.bin``."""
    import onnx

    path = Path(path)
    if path.suffix == ".xml":  # OpenVINO IR: the graph and its weights file
        return path.stat().st_size + path.with_suffix(".bin").stat().st_size
    model = onnx.load(str(path), load_external_data=False)
    base = path.parent.resolve()
    files = set()
    for t in _external_tensors(model):
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        target = (base / loc).resolve()
        if loc and target.is_relative_to(base) and target.is_file():
            files.add(target)
    return path.stat().st_size + sum(f.stat().st_size for f in files)


def check_external_data(model: Any, path: Path) -> None:
    """Refuse external-data locations that leave the model's folder or do not exist."""
    base = path.parent.resolve()
    for t in _external_tensors(model):
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        target = (base / loc).resolve()
        if not loc or Path(loc).is_absolute() or not target.is_relative_to(base):
            raise ModelLoadError(
                f"{path}: initializer {t.name!r} points its external data outside the model's "
                f"folder ({loc!r}); refusing to read it"
            )
        if not target.is_file():
            raise ModelLoadError(f"{path}: external data file {loc!r} of {t.name!r} is missing")


def read_onnx(path: Path) -> Any:
    """Load an ONNX file safely: parse, check external-data paths, then load the data."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.external_data_helper import load_external_data_for_model

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as e:
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    if not model.graph.node:
        raise ModelLoadError(f"{path}: not a readable ONNX model (empty graph)")
    check_external_data(model, path)
    load_external_data_for_model(model, str(path.parent))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelLoadError(f"{path}: invalid ONNX model: {first}") from None
    _finite_initializers(model, path)
    return model


def _finite_initializers(model: Any, path: Path) -> None:
    """Refuse NaN/Inf in float initializers (weights), naming the tensor."""
    from onnx import numpy_helper

    from edgekit.validate import finite_tensors

    for init in model.graph.initializer:
        if init.data_type in FLOAT_TYPES:
            finite_tensors({init.name: numpy_helper.to_array(init)}, str(path))


def network_spec_from_onnx(model: Any, name: str) -> NetworkSpec:
    from onnx import helper

    init = {i.name for i in model.graph.initializer}

    def tensors(values: Any) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            if v.name in init:
                continue
            tt = v.type.tensor_type
            dims: list[int | str] = []
            for i, d in enumerate(tt.shape.dim):
                dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or f"dim{i}"))
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
            sampler = "int" if np.dtype(dtype).kind in "iu" else ""
            out.append(TensorSpec(v.name, tuple(dims), dtype, sampler, 0, 2))
        return tuple(out)

    ins, outs = tensors(model.graph.input), tensors(model.graph.output)
    dyn = {d for t in ins for d in t.shape if isinstance(d, str)}
    return NetworkSpec(name, ins, outs, {d: 2 if d == "batch" else 1 for d in dyn})
