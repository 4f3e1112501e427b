"""ONNX files and artifact folders (the networks an earlier edgekit step wrote)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgekit.artifacts import Artifact, sha256_file
from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader.sources import OnnxSource, single_call_spec
from edgekit.loader.torch_files import read_sample_npz
from edgekit.onnxfile import network_spec_from_onnx, read_onnx
from edgekit.validate import gather_bounds, int_ranges


def from_artifact(art: Artifact) -> OnnxSource:
    if art.manifest.format == "qnn":  # the QDQ networks the context binaries came from
        qdq = art.manifest.checks.get("qnn", {}).get("qdq_files")
        if not isinstance(qdq, dict) or not all(
            isinstance(e, dict) and {"file", "sha256"} <= set(e) for e in qdq.values()
        ):  # checks are free-form in the schema: this one part is read, so check it here
            raise BadInputError(
                f"{art.path}/edgekit.json: checks.qnn.qdq_files: missing or damaged"
            )
        files = {name: art.path / str(e["file"]) for name, e in qdq.items()}
        for name, e in qdq.items():
            ok = files[name].is_file() and files[name].resolve().is_relative_to(art.path.resolve())
            if not ok or sha256_file(files[name]) != e["sha256"]:
                raise BadInputError(
                    f"{art.path}/edgekit.json: checks.qnn.qdq_files.{name}: {e['file']} is "
                    "missing or does not match its sha256; re-export"
                )
        digest = hashlib.sha256("".join(e["sha256"] for e in qdq.values()).encode())
        origin = {**art.manifest.source, "qnn_contexts": {n: str(art.file(n)) for n in qdq}}
        return OnnxSource(str(art.path), art.manifest.spec, files, digest.hexdigest(), origin)
    if art.manifest.format not in ("onnx", "tensorrt", "openvino"):  # tensorrt: ONNX files
        raise ModelLoadError(f"{art.path}: a {art.manifest.format!r} artifact has no ONNX networks")
    # openvino: NET.xml per network (its NET.bin is listed, and hashed, beside it)
    nets = [n.name for n in art.manifest.spec.networks]
    files = {name: art.file(name) for name in art.manifest.files if name in nets}
    digest = hashlib.sha256("".join(e["sha256"] for e in art.manifest.files.values()).encode())
    return OnnxSource(
        str(art.path),
        art.manifest.spec,
        files,
        digest.hexdigest(),
        art.manifest.source,
        checks=art.manifest.checks,
    )


def load_onnx(path: Path, inputs: str | Path | None) -> OnnxSource:
    model = read_onnx(path)
    net = network_spec_from_onnx(model, "model")
    spec = single_call_spec(net, "onnx")
    src = OnnxSource(str(path), spec, {"model": path}, sha256_file(path))
    if inputs is not None:
        samples = read_sample_npz(Path(inputs))
        net.check_inputs(samples, f"--inputs {inputs}")
        bounds = {k: (0, v) for k, v in gather_bounds(model).items()}
        int_ranges(samples, bounds, f"--inputs {inputs}")
        src.sample_inputs[net.name] = samples
    return src
