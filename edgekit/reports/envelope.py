"""The envelope every edgekit report shares, around the body its verb writes.

One family for ``bench``, ``quantize``, ``distill``, ``eval``, ``export`` and ``run``: the same
top-level keys first, then the verb's own keys, unchanged (so readers of ``measurement``,
``stats_ms``, ``fidelity``... keep working)::

    {"schema": "edgekit.bench/1", "schema_version": 1, "kind": "bench",
     "edgekit_version": "0.3.0", "command": {"name": "bench", "argv": [...] | null},
     "created": "2025-01-01T12:00:00Z", "environment": {...host, CPU, versions...},
     "passed": true, "verdict": "pass" | "fail" | "ungated", "gates": [...],
     "warnings": [...], ...the body...}

``passed`` is what the exit code says (no failed gate); ``verdict`` tells a pass from a report
that held nothing to a limit (``ungated``: no gate was set). The JSON Schema of each kind is
shipped in ``edgekit/reports/schemas/`` (:mod:`edgekit.reports.schemas`).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1
Kind = Literal["bench", "quantize", "distill", "eval", "export", "run"]
KINDS: tuple[Kind, ...] = ("bench", "quantize", "distill", "eval", "export", "run")
Verdict = Literal["pass", "fail", "ungated"]
ENVELOPE_KEYS = (
    "schema", "schema_version", "kind", "edgekit_version", "command", "created", "environment",
    "passed", "verdict", "gates", "warnings",
)  # fmt: skip


def schema_tag(kind: str) -> str:
    """``edgekit.<kind>/<version>``: what a reader checks before it trusts the keys."""
    return f"edgekit.{kind}/{SCHEMA_VERSION}"


def edgekit_version() -> str:
    """``edgekit.__version__``, read from the loaded package (importing ``edgekit`` itself
    would tie this low module to every verb the package names for type checkers)."""
    return str(sys.modules["edgekit"].__version__)


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second with a ``Z``: ``2025-01-01T12:00:00Z``."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def invocation() -> list[str] | None:
    """The command line when this process is the ``edgekit`` CLI (``edgekit ...`` or
    ``python -m edgekit ...``), else None: a library call has no command line of its own."""
    argv = list(sys.argv)
    if not argv:
        return None
    prog = Path(argv[0])
    if prog.name == "edgekit" or (prog.name == "__main__.py" and prog.parent.name == "edgekit"):
        return ["edgekit", *argv[1:]]
    return None


def environment() -> dict[str, Any]:
    """What a report says of the machine that made it: host, OS, CPU, ISA, versions."""
    from edgekit.artifacts import versions
    from edgekit.isa import host_isa
    from edgekit.runtimes.base import default_threads

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": default_threads(),
        "cpu_isa": host_isa().to_dict(),
        "versions": versions(),
    }


def verdict_of(passed: bool, gates: Iterable[Any]) -> Verdict:
    """``fail`` when not passed, ``ungated`` when nothing was held to a limit, else ``pass``."""
    if not passed:
        return "fail"
    return "pass" if any(_status(g) != "skipped" for g in gates) else "ungated"


def _status(gate: Any) -> str:
    return str(gate.get("status") if isinstance(gate, Mapping) else gate.status)


def envelope(
    kind: Kind,
    body: Mapping[str, Any],
    gates: Iterable[Any],
    *,
    passed: bool | None = None,
    warnings: Iterable[str] = (),
    env: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of ``kind``: the envelope's keys, then ``body``'s (a body key of the same
    name, such as a bench report's ``environment``, is the envelope's).

    Args:
        gates: :class:`edgekit.gates.Gate` objects or their dicts.
        passed: default: no gate failed.
        env: the environment, when the body measured it already (default: this host now).
    """
    records = [g if isinstance(g, Mapping) else g.to_dict() for g in gates]
    if passed is None:
        passed = all(g.get("status") != "failed" for g in records)
    head: dict[str, Any] = {
        "schema": schema_tag(kind),
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "edgekit_version": edgekit_version(),
        "command": {"name": kind, "argv": invocation()},
        "created": utc_now(),
        "environment": env if env is not None else body.get("environment") or environment(),
        "passed": bool(passed),
        "verdict": verdict_of(bool(passed), records),
        "gates": [dict(g) for g in records],
        "warnings": list(warnings),
    }
    rest = {k: v for k, v in body.items() if k not in head}
    return {**head, **rest}


def slower_warning(
    variant: str, reference: str, ref_ms: float, variant_ms: float, where: str
) -> str | None:
    """The warning when a compressed variant's measured tick is slower than its reference's
    (None when it is not, or when nothing was measured)."""
    if not (ref_ms > 0 and variant_ms > ref_ms):
        return None
    return (
        f"the {variant} is SLOWER than the {reference}: tick p50 {variant_ms:.3f} ms vs "
        f"{ref_ms:.3f} ms ({ref_ms / variant_ms:.2f}x) on {where}"
    )


def speed_warnings(latency: Mapping[str, Any] | None, variant: str, reference: str) -> list[str]:
    """:func:`slower_warning` from a quantize or distill report's ``latency`` section."""
    lat = latency or {}
    if not lat.get("measured"):
        return []
    pairs = (("fp32_p50_ms", "quantized_p50_ms"), ("teacher_p50_ms", "student_p50_ms"))
    for ref_key, var_key in pairs:
        if lat.get(ref_key) is not None and lat.get(var_key) is not None:
            where = str(lat.get("where") or "this host")
            text = slower_warning(variant, reference, lat[ref_key], lat[var_key], where)
            return [text] if text else []
    return []
