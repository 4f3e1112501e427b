"""Hostile-input matrix: model files that would run code, and user code that exits, interrupts
or hangs. Each bad command fails with exit 2 and one line naming the file or factory; the same
command with the input fixed succeeds. A payload that ran would leave a file in the workspace,
which the harness reports as left behind."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FIXTURES
from tests.fixtures.evil_pt2 import (
    exported,
    nested_model,
    opaque_constant,
    sample_inputs,
    shape_expression,
)
from tests.hostile import QUICK_BENCH, Hostile, Workspace

USER = FIXTURES / "user_models.py"
BAD = FIXTURES / "hostile_models.py"
ARGPARSE = FIXTURES / "argparse_at_import.py"
GUARDED = FIXTURES / "argparse_guarded.py"
QUICK_QUANT = ("--calib", "synthetic", "--latency-ticks", "0")


def evil_pt2(make):
    """Setup: an ordinary archive (plain.pt2) and its tampered copy (evil.pt2)."""

    def setup(w: Workspace) -> None:
        make(exported(w.dir), w.dir / "evil.pt2", w.dir / "pwned")

    return setup


def pickle_checkpoint(name: str):
    """Setup: a whole module saved with torch.save, plus sample inputs for it."""

    def setup(w: Workspace) -> None:
        import torch

        from tests.fixtures.user_models import TwoHead

        torch.save(TwoHead(), w.dir / name)
        np.savez(w.dir / "s.npz", obs=np.zeros((2, 12), np.float32))

    return setup


CASES = [
    Hostile(
        "export-pt2-pickled-constant",
        bad=lambda w: ["export", w.dir / "evil.pt2", "--out", w.dir / "o"],
        fixed=lambda w: ["export", w.dir / "plain.pt2", "--out", w.dir / "o"],
        needles=("evil.pt2", "opaque_obj_0", "unpickled", "--allow-pickle"),
        setup=evil_pt2(opaque_constant),
    ),
    Hostile(
        "bench-pt2-unsafe-sample-inputs",
        bad=lambda w: ["bench", w.dir / "evil.pt2", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.dir / "plain.pt2", *QUICK_BENCH],
        needles=("evil.pt2", "sample inputs", "--allow-pickle"),
        setup=evil_pt2(sample_inputs),
    ),
    Hostile(
        "quantize-pt2-evaluated-shape",
        bad=lambda w: ["quantize", w.dir / "evil.pt2", "--out", w.dir / "q", *QUICK_QUANT],
        fixed=lambda w: ["quantize", w.dir / "plain.pt2", "--out", w.dir / "q", *QUICK_QUANT],
        needles=("evil.pt2", "shape expression", "models/model.json", "--allow-pickle"),
        setup=evil_pt2(shape_expression),
    ),
    Hostile(
        "export-pt2-extra-nested-model",
        bad=lambda w: ["export", w.dir / "evil.pt2", "--out", w.dir / "o"],
        fixed=lambda w: ["export", w.dir / "plain.pt2", "--out", w.dir / "o"],
        needles=("evil.pt2", "unexpected entry", "models/sub/evil.json", "--allow-pickle"),
        setup=evil_pt2(nested_model),
    ),
    Hostile(
        "export-pt-pickle",
        bad=lambda w: ["export", w.dir / "m.pt", "--inputs", w.dir / "s.npz", "--out", w.dir / "o"],
        fixed=lambda w: [
            *("export", w.dir / "m.pt", "--inputs", w.dir / "s.npz", "--out", w.dir / "o"),
            "--allow-pickle",
        ],
        needles=("m.pt", "pickle", "--allow-pickle"),
        setup=pickle_checkpoint("m.pt"),
    ),
    Hostile(
        "bench-pth-pickle",
        bad=lambda w: ["bench", w.dir / "m.pth", "--inputs", w.dir / "s.npz", *QUICK_BENCH],
        fixed=lambda w: [
            *("bench", w.dir / "m.pth", "--inputs", w.dir / "s.npz", *QUICK_BENCH),
            "--allow-pickle",
        ],
        needles=("m.pth", "pickle", "--allow-pickle"),
        setup=pickle_checkpoint("m.pth"),
    ),
    Hostile(
        "export-factory-sys-exit",
        bad=lambda w: ["export", f"{BAD}:exits", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{USER}:with_specs", "--out", w.dir / "o"],
        needles=(f"{BAD}:exits", "the factory", "SystemExit", "no GPU found"),
    ),
    Hostile(
        "bench-factory-keyboard-interrupt",
        bad=lambda w: ["bench", f"{BAD}:interrupts", *QUICK_BENCH],
        fixed=lambda w: ["bench", f"{USER}:with_specs", *QUICK_BENCH],
        needles=(f"{BAD}:interrupts", "KeyboardInterrupt"),
    ),
    Hostile(
        "export-argparse-at-import",
        bad=lambda w: ["export", f"{ARGPARSE}:make", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{GUARDED}:make", "--out", w.dir / "o"],
        needles=("argparse_at_import.py:make", "importing", "SystemExit 2", "--ckpt", "__main__"),
    ),
    Hostile(
        "bench-factory-timeout",
        bad=lambda w: ["bench", f"{BAD}:slow", "--timeout", "0.3", *QUICK_BENCH],
        fixed=lambda w: ["bench", f"{BAD}:slow", "--timeout", "30", *QUICK_BENCH],
        needles=(f"{BAD}:slow", "the factory", "--timeout 0.3 s"),
    ),
    Hostile(
        "distill-student-factory-timeout",  # --timeout bounds every piece of user code
        bad=lambda w: [
            *("distill", f"{USER}:with_specs", "--student", f"{BAD}:slow", "--timeout", "0.3"),
            *("--data", "synthetic", "--steps", "2", "--latency-ticks", "0", "--out", w.dir / "s"),
        ],
        fixed=lambda w: [
            *("distill", f"{USER}:with_specs", "--student", f"{BAD}:slow", "--timeout", "30"),
            *("--data", "synthetic", "--steps", "2", "--latency-ticks", "0", "--out", w.dir / "s"),
        ],
        needles=(f"{BAD}:slow", "the factory", "--timeout 0.3 s"),
    ),
    Hostile(
        "export-forward-timeout",
        bad=lambda w: ["export", f"{BAD}:stuck_forward", "--timeout", "0.3", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{BAD}:stuck_forward", "--timeout", "30", "--out", w.dir / "o"],
        needles=(f"{BAD}:stuck_forward", "forward", "--timeout 0.3 s"),
    ),
    Hostile(
        "bench-timeout-not-positive",
        bad=lambda w: ["bench", w.artifact, "--timeout", "-1", *QUICK_BENCH],
        fixed=lambda w: ["bench", w.artifact, "--timeout", "5", *QUICK_BENCH],
        needles=("--timeout -1", "positive"),
    ),
    Hostile(
        "quantize-factory-raises",
        bad=lambda w: ["quantize", f"{USER}:raises", "--out", w.dir / "q", *QUICK_QUANT],
        fixed=lambda w: ["quantize", f"{USER}:with_specs", "--out", w.dir / "q", *QUICK_QUANT],
        needles=(f"{USER}:raises", "RuntimeError", "checkpoint server unreachable"),
    ),
    Hostile(
        "export-module-fails-at-import",
        bad=lambda w: ["export", "tests.fixtures.raises_at_import:make", "--out", w.dir / "o"],
        fixed=lambda w: ["export", "tests.fixtures.user_models:with_specs", "--out", w.dir / "o"],
        needles=("tests.fixtures.raises_at_import", "RuntimeError", "CHECKPOINT_DIR"),
    ),
    Hostile(
        "quantize-missing-factory-file",
        bad=lambda w: ["quantize", f"{w.dir / 'nope.py'}:make", "--out", w.dir / "q", *QUICK_QUANT],
        fixed=lambda w: ["quantize", f"{USER}:with_specs", "--out", w.dir / "q", *QUICK_QUANT],
        needles=("nope.py", "no such file"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_trust(case, hostile):
    hostile(case)
