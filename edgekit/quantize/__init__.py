"""``edgekit quantize``: INT8 static PTQ, INT4 weight-only and mixed precision, per target.

One verb, a config class per method (``Int8Config``, ``Int4Config``, ``MixedConfig``; their
union is ``QuantizeConfig``), a handler registered per precision (``handlers.HANDLERS``)::

    r = quantize("zoo:vla:tiny", "out/vla-int8", Int8Config(max_error=0.05), "calib.npz")
    r.passed, r.error, r.gates
"""

from edgekit._callable import make_callable
from edgekit.quantize.api import QuantizeResult, quantize
from edgekit.quantize.config import (
    Int4Config,
    Int8Config,
    MixedConfig,
    QuantizeConfig,
    quantize_config,
)

__all__ = [
    "Int4Config",
    "Int8Config",
    "MixedConfig",
    "QuantizeConfig",
    "QuantizeResult",
    "quantize",
    "quantize_config",
]

make_callable(__name__, quantize)
