"""Model cards: a YAML/JSON file giving ONNX files their declared tick."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

FIX = Path(__file__).parent / "fixtures" / "declared.py"


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    from edgekit.export import export_onnx
    from edgekit.loader import load

    out = tmp_path_factory.mktemp("card") / "nets"
    assert export_onnx(load(f"{FIX}:policy"), out, tick_checks=1).passed
    return out


def card(folder: Path, **changes: object) -> Path:
    from tests.fixtures.declared import tick

    doc = {"networks": {"encoder": "nets/encoder.onnx", "denoiser": "nets/denoiser.onnx"},
           "tick": tick(), "hz": 10.0, **changes}  # fmt: skip
    path = folder / "policy.card.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_card_gives_onnx_files_their_tick(onnx_files, cli, tmp_path):
    path = card(onnx_files.parent)
    rep = tmp_path / "b.json"
    r = cli("bench", path, "--ticks", "8", "--warmup", "0", "--budget-ms", "1000", "--json", rep)
    assert r.code == 0, r.err
    report = json.loads(rep.read_text())
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["denoiser"]["calls"] == 4 and stages["encoder"]["calls"] == 1
    assert report["loop"]["hz"] == 10.0
    art = tmp_path / "art"
    r = cli("export", path, "--out", art)  # copies the files, parity of the optimized graphs
    assert r.code == 0, r.err
    m = json.loads((art / "edgekit.json").read_text())
    assert m["model"]["program"]["name"] == "tick" and m["model"]["kind"] == "user"
    assert sorted(m["files"]) == ["denoiser", "encoder"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"networks": {"encoder": "nets/nope.onnx"}}, "networks.encoder: no such file"),
        ({"ticks": {}}, "ticks: unknown key"),
        ({"networks": {"encoder": "nets/encoder.onnx"}}, "'denoiser' is not a network"),
    ],
)
def test_a_bad_card_is_one_line(onnx_files, cli, tmp_path, changes, needle):
    path = card(onnx_files.parent, **changes)
    r = cli("bench", path, "--ticks", "2")
    assert r.code == 2 and needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
