"""Untrusted model files run no code unless trusted (--allow-pickle); user code cannot end,
interrupt or hang edgekit (--timeout)."""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader import TorchSource, load
from edgekit.pt2file import _safe_expression
from tests.conftest import FIXTURES

HOSTILE = FIXTURES / "hostile_models.py"


class Touch:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.path, "w")


def exported(tmp_path: Path) -> Path:
    """An ordinary archive from torch.export.save, with a dynamic batch (a shape expression)."""
    import torch

    from tests.fixtures.user_models import TwoHead

    batch = torch.export.Dim("batch")
    ep = torch.export.export(TwoHead(), (torch.randn(2, 12),), dynamic_shapes=({0: batch},))
    f = tmp_path / "plain.pt2"
    torch.export.save(ep, f)
    return f


def tampered(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None], add=None) -> Path:
    """Copy the zip ``src`` to ``dst``, passing each entry (name below the root) through ``edit``
    and appending ``add`` {name: bytes}."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = edit(info.filename[len(root) + 1 :], zin.read(info))
            zout.writestr(info.filename, data if data is not None else zin.read(info))
        for name, data in (add or {}).items():
            zout.writestr(f"{root}/{name}", data)
    return dst


def opaque_constant(plain: Path, dst: Path, marker: Path) -> Path:
    """An extra constant that torch.export.load reads with pickle.loads."""

    def edit(name: str, data: bytes) -> bytes | None:
        if name != "data/constants/model_constants_config.json":
            return None
        cfg = json.loads(data)
        cfg["config"]["evil"] = {
            "path_name": "opaque_obj_0",
            "is_param": False,
            "use_pickle": True,
            "tensor_meta": None,
        }
        return json.dumps(cfg).encode()

    payload = pickle.dumps(Touch(marker))
    return tampered(plain, dst, edit, {"data/constants/opaque_obj_0": payload})


def sample_inputs(plain: Path, dst: Path, marker: Path) -> Path:
    """Sample inputs the safe loader rejects, so torch retries them with weights_only=False."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(((Touch(marker),), {}), buf)
    evil = buf.getvalue()
    return tampered(plain, dst, lambda n, _: evil if n.startswith("data/sample_inputs/") else None)


def shape_expression(plain: Path, dst: Path, marker: Path) -> Path:
    """A shape expression that sympy.sympify evaluates as Python."""

    def edit(name: str, data: bytes) -> bytes | None:
        if not name.startswith("models/"):
            return None
        text = data.decode()
        # torch 2.13 writes the dynamic batch as e.g. Symbol('s77', positive=True, integer=True)
        found = re.search(r'"expr_str": "(Symbol\([^"]*\))"', text)
        assert found, "no symbolic batch in the archive"
        sym = found.group(1)
        evil = f"(open('{marker}', 'w') and {sym})"
        return text.replace(f'"{sym}"', json.dumps(evil)).encode()

    return tampered(plain, dst, edit)


@pytest.mark.parametrize("make", [opaque_constant, sample_inputs, shape_expression])
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
    ],
)
def test_shape_expression_allowlist(text, safe):
    assert _safe_expression(text) is safe


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
