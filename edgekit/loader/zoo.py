"""``zoo:NAME[:PRESET]``: a built-in stack model, with shipped or given trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import BadInputError, ModelLoadError
from edgekit.loader.sources import TorchSource, state_sha256
from edgekit.validate import finite_tensors


def parse_zoo_ref(ref: str) -> tuple[str, str]:
    parts = ref.split(":")
    if len(parts) not in (2, 3) or not parts[1]:
        raise ModelLoadError(f"{ref!r}: expected zoo:NAME or zoo:NAME:PRESET")
    return parts[1], parts[2] if len(parts) == 3 else "default"


SHIPPED_WEIGHTS = Path(__file__).parents[1] / "zoo" / "weights"


def load_zoo(ref: str, weights: str | Path | None, shipped: bool = True) -> TorchSource:
    from edgekit.zoo import ZOO

    name, preset = parse_zoo_ref(ref)
    try:
        entry = ZOO.get(name)
    except BadInputError as e:
        raise ModelLoadError(f"{ref}: {e}") from None
    cfg = entry.config(preset)
    model = entry.build(cfg)
    trained = SHIPPED_WEIGHTS / f"{entry.kind}-{preset}.safetensors"
    if weights is None and shipped and trained.is_file():  # a preset trained and shipped
        weights = trained
    if weights is not None:
        _load_safetensors(model, Path(weights), ref)
    spec = entry.spec(cfg, preset)
    canonical = f"zoo:{entry.kind}:{preset}"
    return TorchSource(
        canonical,
        spec,
        model,
        model.networks(),
        state_sha256(model),
        str(weights) if weights else None,
    )


def _load_safetensors(model: Any, path: Path, ref: str) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelLoadError(f"--weights {path}: no such file")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"--weights {path}: not a readable safetensors file ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad:
        detail = "; ".join(
            f"{what} {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", bad),
            )
            if keys
        )
        raise ModelLoadError(f"--weights {path}: does not fit {ref}: {detail}")
    finite_tensors(state, f"--weights {path}")
    model.load_state_dict(state)
