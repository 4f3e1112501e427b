"""Write synthetic calibration sets for zoo models into calib_data/ (deterministic).

    python calib_data/make_calib.py                            # every kind's tiny presets (shipped)
    python calib_data/make_calib.py --presets default --n 64   # deployable presets (not shipped)
    python calib_data/make_calib.py --kinds omni-body --program arm7 --out /tmp/calib

Each model is loaded (``zoo:KIND:PRESET``), its default loop program (or ``--program``) is
built, and ``edgekit.calib.synthesize_for_program`` draws ``--n`` ticks with ``--seed``; the
set is written to ``OUT/KIND-PRESET.npz`` (``OUT/KIND-PRESET-PROGRAM.npz`` with ``--program``).
Same arguments, same bytes: the arrays are seeded and the zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def jobs(kinds: list[str] | None, presets: list[str] | None) -> list[tuple[str, str]]:
    """(kind, preset) pairs: the given presets each kind has, or every kind's tiny presets."""
    from edgekit.zoo import ZOO

    names = [ZOO.canonical(k) for k in kinds] if kinds else ZOO.names()
    return [
        (kind, preset)
        for kind in names
        for preset in ZOO.get(kind).presets
        if (preset in presets if presets else preset.startswith("tiny"))
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", help="zoo kinds (default: all)")
    ap.add_argument("--presets", nargs="+", help="presets (default: each kind's tiny presets)")
    ap.add_argument("--program", help="a program of the model's spec.programs (default: its own)")
    ap.add_argument("--n", type=int, default=24, help="samples (ticks) per set (default: 24)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic episode")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: calib_data/)")
    args = ap.parse_args(argv)

    from edgekit.calib import save_calibration, synthesize_for_program
    from edgekit.errors import EdgekitError
    from edgekit.loader import load
    from edgekit.models import build_program

    try:
        todo = jobs(args.kinds, args.presets)
        if not todo:
            raise EdgekitError(f"no zoo model has preset(s) {args.presets} in {args.kinds}")
        for kind, preset in todo:
            spec = load(f"zoo:{kind}:{preset}").spec
            program_spec, suffix = spec.program, ""
            if args.program:
                if args.program not in spec.programs:
                    known = ", ".join(spec.programs)
                    raise EdgekitError(
                        f"zoo:{kind}:{preset} has no program {args.program!r}; known: {known}"
                    )
                program_spec, suffix = spec.programs[args.program], f"-{args.program}"
            cal = synthesize_for_program(build_program(program_spec), args.n, args.seed)
            path = save_calibration(args.out / f"{kind}-{preset}{suffix}.npz", cal)
            arrays = ", ".join(f"{k} {list(v.shape[1:])} {v.dtype}" for k, v in cal.arrays.items())
            size = path.stat().st_size / 1024
            print(f"{path}: {cal.n} x ({arrays}), {size:.0f} KB")
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
