"""The TensorRT runtime's checks that run before a GPU: CUDA detection through cuda-python (no
torch), engine/device compatibility, feed casts, profile errors; the engine itself runs only
where a GPU and TensorRT exist (tests/test_tensorrt.py, marked gpu)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgekit.errors import BackendMissingError, BadInputError, InputSpecError
from edgekit.runtimes.tensorrt import cast_feed, check_engine_compat, shape_error

HAS_CUDA_PYTHON = importlib.util.find_spec("cuda") is not None


@pytest.mark.skipif(not HAS_CUDA_PYTHON, reason="cuda-python not installed (make install has it)")
def test_gpu_detection_without_torch_says_why_there_is_none():
    from edgekit.runtimes.cuda import bindings, gpu

    rt = bindings()
    err, count = rt.cudaGetDeviceCount()
    if err == rt.cudaError_t.cudaSuccess and count:
        info = gpu()  # a real GPU: its name and compute capability
        assert info["name"] and info["compute_capability"].count(".") == 1
        return
    with pytest.raises(BackendMissingError, match=r"no CUDA GPU here: (cudaError\w+ \(|no device)"):
        gpu()


@pytest.mark.skipif(not HAS_CUDA_PYTHON, reason="cuda-python not installed (make install has it)")
def test_a_failed_cuda_call_raises_with_cudas_error_name():
    from edgekit.runtimes.cuda import CudaError, bindings, call

    rt = bindings()
    assert call(rt, "ok", (rt.cudaError_t.cudaSuccess, 7)) == 7
    with pytest.raises(CudaError, match=r"CUDA cudaMalloc failed: cudaErrorMemoryAllocation \("):
        call(rt, "cudaMalloc", (rt.cudaError_t.cudaErrorMemoryAllocation, None))


def test_engines_from_another_tensorrt_or_gpu_are_refused():
    built = {"tensorrt_version": "10.3.0.30", "gpu": "Orin", "compute_capability": "8.7"}
    check_engine_compat(built, "10.3.0.30", {"name": "Orin", "compute_capability": "8.7"})
    with pytest.raises(BadInputError, match=r"TensorRT 10.3.0.30; this device has TensorRT 10.7"):
        check_engine_compat(built, "10.7.0.23", {"compute_capability": "8.7"})
    with pytest.raises(BadInputError, match=r"compute capability 8.7 \(Orin\); this GPU is 11.0"):
        check_engine_compat(built, "10.3.0.30", {"name": "Thor", "compute_capability": "11.0"})


def test_feeds_are_cast_to_the_engines_dtype_within_a_kind():
    got = cast_feed("policy/obs", np.ones((2, 3)), np.dtype(np.float16))
    assert got.dtype == np.float16 and got.flags.c_contiguous
    ints = cast_feed("vla/tokens", np.arange(4, dtype=np.int64), np.dtype(np.int32))
    assert ints.dtype == np.int32 and ints.tolist() == [0, 1, 2, 3]
    with pytest.raises(InputSpecError, match=r"^policy/obs: got float32, the engine takes int32$"):
        cast_feed("policy/obs", np.ones(3, np.float32), np.dtype(np.int32))


def test_an_out_of_profile_shape_names_the_profile():
    prof = [(1, 8), (4, 8), (16, 8)]
    msg = shape_error("denoiser/x", (32, 8), prof)
    assert (
        msg == "denoiser/x: shape (32, 8) is outside the engine's profile (min (1, 8), max (16, 8))"
    )
