"""What a report says of the machine that measured it: CPU, ISA class and flags, versions,
and notes when the host's ISA is not the one an artifact or target names."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from edgekit.artifacts import versions
from edgekit.isa import host_isa
from edgekit.loader import OnnxSource, Source
from edgekit.runtimes import default_threads
from edgekit.targets import Target


def environment() -> dict[str, Any]:
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


def isa_notes(source: Source, tgt: Target) -> list[str]:
    """What the measuring host's CPU ISA means for this run, when it is not the artifact's."""
    host = host_isa()
    notes = []
    if tgt.family == "cpu" and tgt.isa not in (None, host.name):
        notes.append(
            f"measured on this host's {host.name} CPU, not on {tgt.device} ({tgt.name}): the "
            "robot's timing differs"
        )
    quantized = source.checks.get("quantize", {}) if isinstance(source, OnnxSource) else {}
    made_for = (quantized.get("cpu_isa") or {}).get("made_for")
    if made_for and made_for != host.name:
        scheme = quantized.get("scheme_detail", {})
        why = (
            ": its full-range U8S8 weights saturate in this CPU's AVX2 kernels, so its outputs "
            f"here are wrong; re-quantize with --target cpu-{host.name} for this CPU"
            if host.saturates_u8s8 and not scheme.get("reduce_range")
            else ""
        )
        notes.append(
            f"artifact quantized for {made_for} ({quantized.get('scheme')}); this host is "
            f"{host.name}{why}"
        )
    return notes
