"""``edgekit bench``: whole control-tick latency against a target's budget."""

from edgekit._callable import make_callable
from edgekit.bench.api import BenchReport, bench
from edgekit.bench.config import BenchConfig
from edgekit.bench.stats import LatencyStats

__all__ = ["BenchConfig", "BenchReport", "LatencyStats", "bench"]

make_callable(__name__, bench)
