"""The engine build of ``edgekit export --format tensorrt --build``: the tensorrt Python API
(builder, ONNX parser, strongly typed network, optimisation profiles, timing cache) on this
device's CUDA GPU, found with cuda-python (no torch). Imports tensorrt only when called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit import progress
from edgekit.artifacts import sha256_file
from edgekit.errors import BackendMissingError, BadInputError


class TrtUnsupportedError(BadInputError):
    """Nodes TensorRT's ONNX parser cannot take (listed in the message)."""


def require_gpu() -> dict[str, Any]:
    """The GPU ``--build`` builds for (cuda-python, no torch), or exit 3 saying why none."""
    from edgekit.runtimes import require
    from edgekit.runtimes.cuda import gpu

    require("tensorrt", "tensorrt")
    try:
        return gpu()
    except BackendMissingError as e:
        raise BackendMissingError(
            f"--build needs a CUDA GPU (a Jetson, or a GPU with the same TensorRT): {e}; "
            "without --build the artifact holds the build plan to run on the device"
        ) from None


def build_engines(ready: dict[str, Path], nets: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Build one serialized engine per network with the tensorrt Python API (every call's
    result checked: TensorRT reports failure by a None, False or -1, not an exception)."""
    import tensorrt as trt

    gpu = require_gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if builder is None:
        raise BackendMissingError("TensorRT could not create a builder (CUDA initialisation?)")
    cache_path = folder / "timing.cache"
    engines = {}
    timing_cache = None
    for net, path in ready.items():
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise TrtUnsupportedError(f"{path.name}: TensorRT's parser failed: {errors}")
        config = builder.create_builder_config()
        if timing_cache is None:
            blob = cache_path.read_bytes() if cache_path.is_file() else b""
            timing_cache = config.create_timing_cache(blob)
        if not config.set_timing_cache(timing_cache, ignore_mismatch=False):
            raise BadInputError(f"{cache_path}: TensorRT refused the timing cache; delete it")
        prof = nets[net]["profile"]
        if prof and not nets[net]["static_shapes"]:
            profile = builder.create_optimization_profile()
            for name, p in prof.items():
                profile.set_shape(name, p["min"], p["opt"], p["max"])
            if config.add_optimization_profile(profile) < 0:  # -1: invalid for this network
                raise BadInputError(f"{path.name}: TensorRT refused the profile {prof}")
        # TensorRT times candidate kernels while it builds: nothing may redraw meanwhile
        with progress.timed(f"building the TensorRT engine of {net} (it times its kernels)"):
            serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BadInputError(f"{path.name}: TensorRT could not build an engine (see its log)")
        engine = folder / f"{net}.engine"
        engine.write_bytes(bytes(serialized))
        engines[net] = {"file": engine.name, "sha256": sha256_file(engine)}
    if timing_cache is not None:
        cache_path.write_bytes(bytes(timing_cache.serialize()))
    return {
        "built": True,
        "engines": engines,
        "tensorrt_version": trt.__version__,
        "gpu": gpu["name"],
        "compute_capability": gpu["compute_capability"],
    }
