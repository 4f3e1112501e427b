"""Plugin loop programs: a user's LoopProgram class, carried by reference and source hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture
def user_code(tmp_path: Path) -> Path:
    """The factory and its plugin, copied where the test may edit them."""
    code = tmp_path / "code"
    code.mkdir()
    for name in ("declared.py", "plugin_tick.py"):
        shutil.copy(FIX / name, code / name)
    return code


def test_a_plugin_tick_is_carried_by_the_artifact_and_trusted_only_when_asked(
    cli, tmp_path, user_code
):
    art = tmp_path / "art"
    r = cli("export", f"{user_code / 'declared.py'}:rnn_plugin", "--out", art)
    assert r.code == 0, r.err
    prog = json.loads((art / "edgekit.json").read_text())["model"]["program"]
    assert prog["name"] == "plugin"
    assert prog["params"]["ref"] == f"{(user_code / 'plugin_tick.py').resolve()}:RnnTick"
    assert len(prog["params"]["sha256"]) == 64 and prog["params"]["params"] == {"hidden": 8}

    import edgekit.plugins

    edgekit.plugins._trusted.clear()  # as in a new process: only the artifact names the plugin
    args = ("bench", art, "--ticks", "4", "--warmup", "0", "--budget-ms", "1000")
    r = cli(*args)  # an artifact naming code: not imported unless asked
    assert r.code == 2 and "pass --allow-plugin" in r.err, r.err
    rep = tmp_path / "b.json"
    r = cli(*args, "--allow-plugin", "--json", rep)
    assert r.code == 0, r.err
    stages = {s["name"]: s for s in json.loads(rep.read_text())["stages"]}
    assert stages["rnn"]["calls"] == 1 and "state" in stages

    plugin = user_code / "plugin_tick.py"
    plugin.write_text(plugin.read_text().replace("self.h = out", "self.h = 0.5 * out"))
    r = cli(*args, "--allow-plugin")
    assert r.code == 2 and "its source changed since the artifact was made" in r.err, r.err


def test_a_plugin_that_cannot_be_imported_is_one_line(cli, tmp_path, user_code):
    out = tmp_path / "a"
    r = cli("export", f"{user_code / 'declared.py'}:missing_plugin", "--out", out)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "no_such_tick.py" in r.err and not out.exists()


def test_a_card_naming_a_plugin_is_data_and_imports_it_only_with_allow_plugin(
    cli, tmp_path, user_code
):
    import edgekit.plugins

    art = tmp_path / "art"
    assert cli("export", f"{user_code / 'declared.py'}:rnn_plugin", "--out", art).code == 0
    edgekit.plugins._trusted.clear()  # as in a new process
    sys_modules_before = set(__import__("sys").modules)
    card = user_code / "policy.card.yaml"
    card.write_text(
        f"networks: {{rnn: {art / 'rnn.onnx'}}}\ntick: plugin_tick.py:RnnTick\n"
        "tick_params: {hidden: 8}\n"
    )
    args = ("bench", card, "--ticks", "2", "--warmup", "0", "--budget-ms", "60000")
    r = cli(*args)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r.err
    assert "policy.card.yaml" in r.err and "tick:" in r.err and "--allow-plugin" in r.err
    assert not edgekit.plugins._trusted  # nothing of the plugin was imported or trusted
    assert not {m for m in __import__("sys").modules if "plugin_tick" in m} - sys_modules_before
    r = cli(*args, "--allow-plugin")
    assert r.code == 0, r.err
