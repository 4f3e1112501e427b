"""``edgekit quantize``: INT8 static PTQ, INT4 weight-only and mixed precision, per target.

One verb, a config object, a handler registered per precision (``handlers.HANDLERS``)::

    quantize("zoo:vla:tiny", "out/vla-int8", QuantizeConfig(precision="int8"), "calib.npz")
"""

from edgekit._callable import make_callable
from edgekit.quantize.api import QuantizeGateFailed, QuantizeResult, quantize
from edgekit.quantize.config import QuantizeConfig

__all__ = ["QuantizeConfig", "QuantizeGateFailed", "QuantizeResult", "quantize"]

make_callable(__name__, quantize)
