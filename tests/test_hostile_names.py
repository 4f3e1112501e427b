"""Names are not paths: a network name becomes a file name (NET.onnx) and a module name, so one
that is a path (``../ESCAPED``) or holds a newline is refused where it enters — a factory, a
model card, an artifact's manifest (hashes intact) — before anything is written. A payload that
escaped ``--out`` would be left beside it, which the harness reports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import pytest

from tests.conftest import FIXTURES
from tests.hostile import Hostile, Workspace

BAD = FIXTURES / "hostile_models.py"


def _manifest_network(name: str) -> Callable[[Workspace], None]:
    """The tiny artifact with its network renamed in the manifest (file hashes intact)."""

    def setup(w: Workspace) -> None:
        art = w.dir / "art"
        if art.exists():
            shutil.rmtree(art)
        shutil.copytree(w.artifact, art)
        m = json.loads((art / "edgekit.json").read_text())
        text = json.dumps(m).replace('"policy"', json.dumps(name))
        (art / "edgekit.json").write_text(text)

    return setup


def _card(name: str) -> Callable[[Workspace], None]:
    """A model card giving the tiny artifact's ONNX file the network name ``name``."""

    def setup(w: Workspace) -> None:
        tick = {
            "observation": [{"name": "history", "shape": [4, 84]}],
            "blocks": [{"block": "call", "network": name, "inputs": {"obs_history": "history"}}],
            "outputs": ["action"],
        }
        card = {"networks": {name: str(w.artifact / "policy.onnx")}, "tick": tick}
        (w.dir / "c.json").write_text(json.dumps(card))

    return setup


def _quantize(w: Workspace) -> list[object]:
    return ["quantize", w.dir / "art", "--calib", "synthetic", "--out", w.dir / "q",
            "--latency-ticks", "0"]  # fmt: skip


CASES = [
    Hostile(
        "export-factory-network-name-is-a-path",
        bad=lambda w: ["export", f"{BAD}:named", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{BAD}:well_named", "--out", w.dir / "o"],
        needles=("hostile_models.py:named", "'../ESCAPED'", "network name"),
    ),
    Hostile(
        "export-factory-tensor-name-newline",
        bad=lambda w: ["export", f"{BAD}:newline_tensor", "--out", w.dir / "o"],
        fixed=lambda w: ["export", f"{BAD}:well_named", "--out", w.dir / "o"],
        needles=("newline_tensor", "tensor name", "control characters"),
    ),
    Hostile(
        "quantize-manifest-network-name-is-a-path",
        bad=lambda w: _quantize(w),
        fixed=lambda w: _quantize(w),
        needles=("edgekit.json", "'../ESCAPED'", "network name"),
        setup=_manifest_network("../ESCAPED"),
        fix=_manifest_network("policy"),
    ),
    Hostile(
        "export-card-network-name-is-a-path",
        bad=lambda w: ["export", w.dir / "c.json", "--out", w.dir / "o"],
        fixed=lambda w: ["export", w.dir / "c.json", "--out", w.dir / "o"],
        needles=("c.json", "networks", "'../ESCAPED'"),
        setup=_card("../ESCAPED"),
        fix=_card("policy"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile(case: Hostile, hostile: Callable[[Hostile], None]) -> None:
    hostile(case)


def test_policy_load_refuses_a_path_name_in_one_line(humanoid_artifact, tmp_path):
    from edgekit import Policy
    from edgekit.errors import BadInputError

    w = Workspace(tmp_path, humanoid_artifact, humanoid_artifact)
    _manifest_network("../ESCAPED")(w)
    with pytest.raises(BadInputError, match=r"edgekit\.json: model: network name '\.\./ESCAPED'"):
        Policy.load(tmp_path / "art")
