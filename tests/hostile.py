"""The hostile-input matrix's harness: one bad command, then the same command with the input fixed.

Each case asserts what a user (or CI) is promised for bad input: the documented exit code, one
line on stderr that starts with ``error:``, no traceback, nothing left behind in the folder the
output would have gone to, and that the *same* command succeeds once the input is fixed (so the
error is about that input, not about something else that is broken).

Usage (in a ``tests/test_hostile_*.py`` file)::

    CASES = [
        Hostile(
            "bench-nan-hz",
            bad=lambda w: ["bench", w.artifact, "--hz", "nan"],
            fixed=lambda w: ["bench", w.artifact, "--hz", "50", *QUICK_BENCH],
            needles=("--hz",),
        ),
    ]

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
    def test_hostile(case, hostile):
        hostile(case)

``w`` is a :class:`Workspace`: a fresh folder per case (``w.dir``; point ``--out``/``--json``
into it) plus a few ready inputs shared by the session (a tiny exported artifact, its
calibration file, a valid recipe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A bench that always passes quickly: two ticks, a budget no machine misses.
QUICK_BENCH = ("--ticks", "2", "--warmup", "0", "--budget-ms", "60000")


@dataclass
class Workspace:
    dir: Path  # fresh per case: outputs go here; its listing is checked after the bad run
    artifact: Path  # a tiny exported humanoid artifact (read-only for cases: copy to modify)
    calib: Path  # calibration data matching ``artifact``
    extra: dict[str, Any] = field(default_factory=dict)


Argv = Callable[[Workspace], Sequence[Any]]


@dataclass
class Hostile:
    """One hostile input and its fix.

    Attributes:
        id: short name, shown by pytest.
        bad: argv (without ``edgekit``) of the command with the bad input.
        fixed: argv of the same command with the input fixed; None when no fix exists (e.g. a
            refused pickle: the fix is a flag that trusts it, tested elsewhere).
        code: the exit code the bad command must return.
        needles: substrings the one error line must contain (the flag/file/field at fault).
        setup: prepares the bad input in the workspace before ``bad`` runs (writes files...).
        fix: changes the workspace between the bad and the fixed run (None: ``fixed`` alone).
    """

    id: str
    bad: Argv
    fixed: Argv | None
    code: int = 2
    needles: tuple[str, ...] = ()
    setup: Callable[[Workspace], None] | None = None
    fix: Callable[[Workspace], None] | None = None


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check_clean_error(code: int, err: str, want: int, needles: Sequence[str]) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and ln[:10] != "[edgekit] "]
    assert code == want, f"exit {code}, wanted {want}; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"stderr has {len(lines)} lines, wanted one: {err!r}"
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
