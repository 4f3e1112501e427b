"""A hardware target profile: published figures, default budget, and what its family decides
(INT8 schemes, the artifact format, estimate precision and roofline factors)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from edgekit.errors import BadInputError
from edgekit.isa import ARM64, CpuIsa, host_isa
from edgekit.targets.schemes import Scheme

# The share of the loop period the stack gives the model tick by default; the rest is left for
# sensor I/O, communication and the controller around it.
DEFAULT_HEADROOM = 0.8


@dataclass(frozen=True)
class Target:
    name: str
    family: str  # "cpu", "jetson", "qualcomm"
    device: str
    accelerator: str
    runtime: str  # what runs models there: onnxruntime, tensorrt, qnn
    int8_tops: float | None  # dense
    fp16_tflops: float | None
    memory_gbs: float | None
    precisions: tuple[str, ...]
    measurable_here: bool = False
    headroom: float = DEFAULT_HEADROOM
    source: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    isa: str | None = None  # CPU targets: the ISA class it names; None = this host's
    tensorrt: str | None = None  # Jetson targets: the TensorRT its JetPack ships, e.g. "10.3"

    def cpu_isa(self) -> CpuIsa:
        """The CPU ISA an artifact for this target is made for (CPU targets)."""
        host = host_isa()
        if self.isa is None or self.isa == host.name:
            return host
        return CpuIsa(self.isa, "arm64" if self.isa == ARM64 else "x86_64", (), "")

    # What a family decides (overridden in targets/cpu.py, jetson.py, qualcomm.py):
    export_format: ClassVar[str] = "onnx"  # the artifact the target's runtime loads
    estimate_precision: ClassVar[str] = "fp32"  # what an estimate assumes when not told
    # roofline efficiency factors for an estimate (None: the host is measured instead)
    efficiency: ClassVar[dict[str, float] | None] = None

    def int8_schemes(self) -> list[Scheme]:
        """Candidate INT8 schemes, cheapest first (an error budget picks among them)."""
        raise BadInputError(f"--target {self.name}: no INT8 scheme for family {self.family!r}")

    def why_not_measurable(self) -> str:
        return f"target {self.name!r} ({self.device}) cannot be measured on this machine"

    def budget_ms(self, hz: float) -> float:
        """Default tick budget at a loop rate: the period times the headroom."""
        return 1000.0 / hz * self.headroom

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["precisions"] = list(self.precisions)
        d["aliases"] = list(self.aliases)
        return d
