"""What the environment says about output: CI, colour, and edgekit's own ``EDGEKIT_*`` defaults.

Every check of ``CI``, ``NO_COLOR`` and ``FORCE_COLOR`` goes through here, so they mean the same
everywhere:

- ``CI`` is a boolean: unset, empty, ``0``, ``false``, ``no`` or ``off`` (any case) is not CI;
  anything else (``true``, ``1``, ``yes``, a CI system's own value) is.
- ``NO_COLOR`` (no-color.org): set and not empty, output carries no terminal escape codes at all.
- ``FORCE_COLOR`` (force-color.org): set and not empty, a terminal's rich output even when piped
  or in CI (``NO_COLOR`` wins when both are set).

``EDGEKIT_*`` variables give options their defaults (an option given on the command line wins);
each option's ``--help`` names its variable.
"""

from __future__ import annotations

import os

ENV_TARGET = "EDGEKIT_TARGET"  # --target of bench and quantize
ENV_THREADS = "EDGEKIT_THREADS"  # --threads of bench
ENV_DEBUG = "EDGEKIT_DEBUG"  # the root --debug
ENV_DEFAULTS = (ENV_TARGET, ENV_THREADS, ENV_DEBUG)

_FALSE = {"", "0", "false", "no", "off", "n", "f"}


def env_flag(name: str) -> bool:
    """A boolean environment variable: unset, empty, 0/false/no/off (any case) is False."""
    return os.environ.get(name, "").strip().lower() not in _FALSE


def in_ci() -> bool:
    """Whether this runs in CI (``CI=true``; ``CI=false``, ``CI=0`` or an empty ``CI`` is not)."""
    return env_flag("CI")


def no_color() -> bool:
    """``NO_COLOR`` set and not empty: no terminal escape codes."""
    return os.environ.get("NO_COLOR", "") != ""


def force_color() -> bool:
    """``FORCE_COLOR`` set and not empty (and no ``NO_COLOR``): rich output on any stream."""
    return os.environ.get("FORCE_COLOR", "") != "" and not no_color()
