"""Untrusted model files run no code unless trusted (--allow-pickle); user code cannot end,
interrupt or hang edgekit (--timeout)."""

from __future__ import annotations

import contextlib
import time
import zipfile

import pytest

from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader import TorchSource, load
from edgekit.pt2file import _safe_expression
from tests.conftest import FIXTURES
from tests.fixtures.evil_pt2 import (
    exported,
    nested_model,
    odd_model_name,
    opaque_constant,
    sample_inputs,
    shape_expression,
    tampered,
)

HOSTILE = FIXTURES / "hostile_models.py"


@pytest.mark.parametrize(
    "make", [opaque_constant, sample_inputs, shape_expression, nested_model, odd_model_name]
)
def test_pt2_that_runs_code_is_refused(tmp_path, make):
    plain = exported(tmp_path)
    marker = tmp_path / "pwned"
    evil = make(plain, tmp_path / "evil.pt2", marker)
    with pytest.raises(ModelLoadError, match="--allow-pickle") as e:
        load(str(evil))
    assert "evil.pt2" in str(e.value)
    assert not marker.exists()
    # the refusal is real: trusting the file lets torch.export.load run the payload
    with contextlib.suppress(ModelLoadError):  # the payload is no valid constant/input...
        load(str(evil), allow_pickle=True)
    assert marker.exists()


def test_plain_pt2_loads_without_trust(tmp_path):
    src = load(str(exported(tmp_path)))
    assert isinstance(src, TorchSource)
    assert src.spec.networks[0].inputs[0].shape == ("batch", 12)


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("Symbol('s77', positive=True, integer=True)", True),
        ("Add(Mul(Integer(2), Symbol('s0', integer=True)), Integer(-1))", True),
        ("FloorDiv(Symbol('u0', integer=True), Integer(4))", True),
        ("Float('1.5', precision=53)", True),
        ("__import__('os').system('true')", False),
        ("eval(chr(49))", False),
        ("Symbol('s0').__class__", False),
        ("Symbol('__import__')", False),
        ("Integer(1)(2)", False),
        ("[Integer(1)]", False),
        # values sympy would compute for ever while it builds them (no --timeout needed)
        ("Pow(Integer(10), Integer(1000000000))", False),
        ("Integer(10)**Integer(10)**Integer(10)**Integer(10)", False),
        ("PowByNatural(Integer(7), Mul(Integer(1000), Integer(100000)))", False),
        ("LShift(Integer(1), Integer(100000000000))", False),
        ("Integer('" + "9" * 2000 + "')", False),
        ("factorial(Integer(100000000))", False),  # not shape arithmetic
        ("Pow(Symbol('s0', integer=True), Integer(2))", True),
        ("Mul(Integer(2), Pow(Symbol('s0', positive=True), Integer(-1)))", True),
        ("PowByNatural(Integer(2), Integer(62))", True),
    ],
)
def test_shape_expression_allowlist(text, safe):
    assert _safe_expression(text) is safe


def test_a_shape_expression_too_large_to_build_is_refused(tmp_path):
    plain = exported(tmp_path)
    huge = tmp_path / "huge.pt2"
    shape_expression(plain, huge, tmp_path / "unused", "Pow(Integer(10), Integer(1000000000))")
    with pytest.raises(ModelLoadError, match="shape expression 'Pow"):
        load(str(huge))


def test_legacy_and_compiled_archives_refused(tmp_path):
    plain = exported(tmp_path)
    legacy = tmp_path / "legacy.pt2"
    with zipfile.ZipFile(legacy, "w") as z:
        z.writestr("version", "8.0")
        z.writestr("serialized_exported_program.json", "{}")
    with pytest.raises(ModelLoadError, match="layout"):
        load(str(legacy))
    so = {"data/aotinductor/m/x.so": b""}
    aoti = tampered(plain, tmp_path / "aoti.pt2", lambda n, d: None, so)
    with pytest.raises(ModelLoadError, match="AOTInductor"):
        load(str(aoti))
    # an allow-list: an entry torch.export.save never writes is refused, whatever it holds
    for extra in ("data/mtia/x.bin", "models/", "data/weights/weight_99x"):
        odd = tampered(plain, tmp_path / "odd.pt2", lambda n, d: None, {extra: b""})
        with pytest.raises(ModelLoadError, match="unexpected entry"):
            load(str(odd))
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match=r"not a readable torch\.export archive"):
        load(str(junk))


def test_factory_exit_names_the_factory_and_what_it_printed():
    with pytest.raises(ModelLoadError) as e:
        load(f"{FIXTURES / 'argparse_at_import.py'}:make")
    msg = str(e.value)
    assert "argparse_at_import.py" in msg and "SystemExit 2" in msg and "--ckpt" in msg
    with pytest.raises(ModelLoadError, match=r"the factory tried to end the process"):
        load(f"{HOSTILE}:exits")
    with pytest.raises(ModelLoadError, match="raised KeyboardInterrupt"):
        load(f"{HOSTILE}:interrupts")


def test_timeout_bounds_factory_and_forward():
    t0 = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"the factory did not finish within --timeout 0.3 s"):
        load(f"{HOSTILE}:slow", timeout=0.3)
    with pytest.raises(ModelLoadError, match=r"the model's forward did not finish"):
        load(f"{HOSTILE}:stuck_forward", timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert isinstance(load(f"{HOSTILE}:slow", timeout=30), TorchSource)
    with pytest.raises(ModelLoadError, match="the factory did not finish"):
        load(f"{HOSTILE}:swallows_errors", timeout=0.3)  # `except Exception` cannot catch it
    for bad in (-1.0, 0.0, float("nan")):
        with pytest.raises(BadInputError, match="--timeout"):
            load("zoo:humanoid:tiny", timeout=bad)
