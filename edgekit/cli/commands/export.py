"""``edgekit export``: ONNX, QNN context binaries or TensorRT-ready ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgekit.cli import options
from edgekit.cli.options import ForceOpt, InputsOpt, ModelArg, PickleOpt, TimeoutOpt, WeightsOpt

if TYPE_CHECKING:
    from edgekit.loader import Source


def export(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact folder to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Export format.")] = "onnx",
    force: ForceOpt = False,
    no_parity: Annotated[
        bool, typer.Option("--no-parity", help="Skip the numerical parity check.")
    ] = False,
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="qnn: the Qualcomm target to compile for.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="qnn: fail on any CPU fallback or fidelity miss.")
    ] = False,
    max_error: Annotated[
        float | None, typer.Option("--max-error", help="qnn: whole-tick rel-L2 vs FP32 limit.")
    ] = None,
    precision: Annotated[
        str, typer.Option("--precision", help="tensorrt: fp16 (default), int8 (Q/DQ) or fp32.")
    ] = "fp16",
    build: Annotated[
        bool, typer.Option("--build", help="tensorrt: build the engines (needs TensorRT + GPU).")
    ] = False,
    weights: WeightsOpt = None,
    inputs: InputsOpt = None,
    allow_pickle: PickleOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Export a model: ONNX per network with a parity check, or QNN context binaries."""
    from edgekit.artifacts import check_out_dir
    from edgekit.cli.guard import claimed
    from edgekit.errors import BadInputError
    from edgekit.export import FORMATS

    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    check_out_dir(out, force)  # fail before loading anything
    with claimed(out):
        source = options.load_source(model, weights, inputs, allow_pickle, timeout)
        _export(source, out, fmt, force, no_parity, target, strict, max_error, precision, build)


def _export(
    source: Source,
    out: Path,
    fmt: str,
    force: bool,
    no_parity: bool,
    target: str | None,
    strict: bool,
    max_error: float | None,
    precision: str,
    build: bool,
) -> None:
    from edgekit.cli.render.export import print_onnx, print_qnn, print_tensorrt
    from edgekit.errors import BadInputError
    from edgekit.export import FORMATS

    if fmt == "qnn":
        print_qnn(
            FORMATS[fmt](
                source, out, target=target, strict=strict, max_error=max_error, force=force
            )
        )
        return
    if fmt == "tensorrt":
        if strict or max_error is not None:
            raise BadInputError("--strict/--max-error apply to --format qnn")
        print_tensorrt(
            FORMATS[fmt](
                source,
                out,
                target=target,
                precision=precision,
                build=build,
                force=force,
                check_parity=not no_parity,
            )
        )
        return
    if target is not None or strict or max_error is not None or build:
        raise BadInputError("--target/--strict/--max-error/--build apply to --format qnn/tensorrt")
    print_onnx(FORMATS[fmt](source, out, force=force, check_parity=not no_parity), out)
