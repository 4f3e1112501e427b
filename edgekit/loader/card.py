"""Model cards: a YAML/JSON file that gives ONNX files (or ``.pt2`` archives) their tick.

    # policy.card.yaml (paths relative to the card)
    networks:
      encoder: encoder.onnx
      unet: unet.onnx
    tick: {observation: [...], blocks: [...], outputs: [action]}   # or "my_tick.py:MyTick"
    tick_params: {}        # a plugin program's params (a plugin tick needs --allow-plugin)
    hz: 10

The card itself is the model reference (``edgekit bench policy.card.yaml``). All networks are
ONNX files, or all are ``.pt2`` archives (with the usual trust rules for pickled parts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgekit.errors import ModelLoadError
from edgekit.loader.sources import OnnxSource, Source, TorchSource
from edgekit.spec import NetworkSpec, check_network_name

CARD_SUFFIXES = (".yaml", ".yml", ".json")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    networks: dict[str, str] = Field(min_length=1)
    tick: dict[str, Any] | str
    tick_params: dict[str, Any] | None = None
    hz: float = Field(default=50.0, gt=0)


def read_card(path: Path) -> ModelCard:
    try:
        text = path.read_text()
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read the model card ({e.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path}: not a readable model card ({first})") from None
    try:
        return ModelCard.model_validate(doc)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ModelLoadError(f"{path}: {loc}: {msg}") from None


def load_card(path: Path, allow_pickle: bool, timeout: float | None) -> Source:
    """The networks a card names, run by its tick, as one source."""
    from edgekit.loader.torch_files import declared_spec
    from edgekit.plugins import plugins_allowed

    card = read_card(path)
    if isinstance(card.tick, str) and not plugins_allowed():
        raise ModelLoadError(
            f"{path}: tick: names the plugin program {card.tick} (code, imported from a data "
            "file); pass --allow-plugin to import it if you trust it"
        )
    for n in card.networks:
        check_network_name(n, f"{path}: networks:")
    files = {n: (path.parent / f).resolve() for n, f in card.networks.items()}
    for n, f in files.items():
        if not f.is_file():
            raise ModelLoadError(f"{path}: networks.{n}: no such file {f}")
    kinds = {f.suffix.lower() for f in files.values()}
    if kinds == {".onnx"}:
        from edgekit.artifacts import sha256_file
        from edgekit.onnxfile import network_spec_from_onnx, read_onnx

        specs = {n: network_spec_from_onnx(read_onnx(f), n) for n, f in files.items()}
        spec = declared_spec(str(path), card.tick, card.tick_params, specs, card.hz,
                             base=path.parent)  # fmt: skip
        digest = hashlib.sha256("".join(sha256_file(f) for f in files.values()).encode())
        return OnnxSource(str(path), spec, files, digest.hexdigest())
    if kinds == {".pt2"}:
        return _pt2_card(path, card, files, allow_pickle, timeout)
    raise ModelLoadError(
        f"{path}: networks: all .onnx files or all .pt2 archives (got {', '.join(sorted(kinds))})"
    )


def _pt2_card(
    path: Path, card: ModelCard, files: dict[str, Path], allow_pickle: bool, timeout: float | None
) -> TorchSource:
    from torch import nn

    from edgekit.loader.sources import state_sha256
    from edgekit.loader.torch_files import declared_spec, load_pt2

    modules, specs, samples = {}, {}, {}
    for n, f in files.items():
        one = load_pt2(f, None, allow_pickle, timeout)
        net = one.spec.networks[0]
        modules[n] = one.networks[net.name]
        specs[n] = NetworkSpec(n, net.inputs, net.outputs, net.sample_dims)
        if net.name in one.sample_inputs:
            samples[n] = one.sample_inputs[net.name]
    spec = declared_spec(str(path), card.tick, card.tick_params, specs, card.hz, base=path.parent)
    container = nn.ModuleDict(modules)
    src = TorchSource(str(path), spec, container, modules, state_sha256(container))
    src.sample_inputs.update(samples)
    return src
