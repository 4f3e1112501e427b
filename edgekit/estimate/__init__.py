"""Latency estimates for targets that are not this machine (a labelled roofline)."""

from edgekit.estimate.roofline import (
    ESTIMATED,
    MEASURED,
    Machine,
    TickEstimate,
    estimate_tick,
    host_machine,
    target_machine,
)

__all__ = [
    "ESTIMATED",
    "MEASURED",
    "Machine",
    "TickEstimate",
    "estimate_tick",
    "host_machine",
    "target_machine",
]
