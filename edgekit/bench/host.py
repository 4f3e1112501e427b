"""What a report says of the machine that measured it: CPU, ISA class and flags, versions
(:func:`environment`, which lives with the report envelope in :mod:`edgekit.reports`), and
notes when the host's ISA is not the one an artifact or target names."""

from __future__ import annotations

from edgekit.isa import ARM64, host_isa
from edgekit.loader import OnnxSource, Source
from edgekit.reports.envelope import environment
from edgekit.targets import Target

__all__ = ["environment", "isa_conflict", "isa_notes"]


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
    wrong = isa_conflict(source)
    if wrong:
        notes.append(f"{wrong}, so its outputs here are wrong")
    elif made_for and (made_for == ARM64) != (host.arch == "arm64"):
        notes.append(f"artifact quantized for {made_for}; this host is {host.name}")
    return notes


def isa_conflict(source: Source) -> str | None:
    """Why this CPU computes the artifact's INT8 wrongly (its full-range weights saturate in
    AVX2's int16 pair sums), or None when it computes it as made."""
    host = host_isa()
    quantized = source.checks.get("quantize", {}) if isinstance(source, OnnxSource) else {}
    made_for = (quantized.get("cpu_isa") or {}).get("made_for")
    full_range = not quantized.get("scheme_detail", {}).get("reduce_range", True)
    if not (made_for and host.saturates_u8s8 and full_range):
        return None
    return (
        f"artifact quantized for {made_for} ({quantized.get('scheme')}): its full-range "
        f"weights saturate in this CPU's {host.name} kernels; re-quantize with --target cpu "
        "(or cpu-x86-avx2) for this CPU"
    )
