"""Exception types and the exit codes the CLI maps them to.

Every message is one line that names the thing at fault (file, field, model, target), the value
given and what to do. The CLI prints ``error: <message>`` and exits with ``exit_code``; a
traceback only appears with ``--debug``.

Exit codes (documented in the README):
    0  success
    1  a gate failed: latency budget, parity or fidelity
    2  bad usage or bad input (files, model references, shapes, options)
    3  a needed backend or device is missing (optional package, GPU, target hardware)
    4  internal error: a bug in edgekit (please report it with ``--debug`` output)
    130  interrupted (SIGINT, Ctrl-C); 143  terminated (SIGTERM): 128 + the signal number, as a
         shell reports a process killed by it. Staging folders and locks are removed first.

An operating-system error while writing (read-only or full disk, a missing folder, a parent that
is a file) is the user's to fix, so it is exit 2 naming the path, never exit 4.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1
EXIT_BAD_INPUT = 2
EXIT_BACKEND = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

# optional packages -> the extra that installs them (a command that needs one exits 3)
EXTRAS = {"torch": "compress", "onnxscript": "compress", "safetensors": "compress",
          "matplotlib": "plots", "gymnasium": "sim", "mujoco": "sim", "tensorrt": "tensorrt",
          "diffusers": "user-models", "transformers": "user-models"}  # fmt: skip

_debug = {"on": False}


def set_debug(on: bool) -> None:
    """``--debug``: let third-party diagnostics (torch's logged tracebacks) through to stderr."""
    _debug["on"] = on


def debug() -> bool:
    """Whether ``--debug`` is on (the library keeps torch's own logging quiet otherwise)."""
    return _debug["on"]


class EdgekitError(Exception):
    """Base class: a failure edgekit can explain in one line."""

    exit_code: int = EXIT_BAD_INPUT


class BadInputError(EdgekitError):
    """The user gave something edgekit cannot use (file, option, shape, reference)."""


class ModelLoadError(BadInputError):
    """A model reference could not be resolved or loaded."""


class InputSpecError(BadInputError):
    """Inputs do not match a model's declared names, shapes or dtypes."""


class ExportError(BadInputError):
    """The model could not be exported (unsupported op, failed checker...)."""


class OutputExistsError(BadInputError):
    """The output folder exists and is not empty."""


class DestinationError(BadInputError):
    """An output (``--out``, ``--json``) cannot be written there: the OS refused, the folder is
    missing or a file, or another edgekit process is writing it."""


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived: unwinds like KeyboardInterrupt so every ``finally`` and
    staging cleanup runs, and ``except Exception`` in library code cannot swallow it."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GateFailed(EdgekitError):
    """A measured figure missed its gate (budget, parity, fidelity)."""

    exit_code = EXIT_GATE


class ParityError(GateFailed):
    """Exported model outputs differ from the reference beyond tolerance."""


class BudgetMissed(GateFailed):
    """The control tick missed its latency budget."""


class BackendMissingError(EdgekitError):
    """An optional package or a device needed for this step is not present."""

    exit_code = EXIT_BACKEND


class TargetNotMeasurableError(BackendMissingError):
    """The target hardware is not on this machine, so its latency cannot be measured here."""
