"""The ``edgekit`` command: parse, call the library, render. Nothing heavy at import time.

``app`` is the typer app with the root options; each command lives in :mod:`edgekit.cli.commands`
(one module per command), its human-readable output in :mod:`edgekit.cli.render`, the options
shared by the commands that load a model in :mod:`edgekit.cli.options`.

Exit codes: 0 ok, 1 a gate failed, 2 bad usage or input, 3 missing backend/device, 4 internal
error. Errors print one line; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from edgekit.cli.commands import register
from edgekit.errors import EXIT_INTERNAL, EdgekitError, set_debug

app = typer.Typer(
    name="edgekit",
    help="Fit a robot's AI stack on the robot: export and bench stack models against "
    "control-loop budgets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from edgekit import __version__

        print(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    _state["debug"] = debug
    set_debug(debug)


register(app)


def main() -> None:
    """Console-script entry point: map edgekit errors to one line and an exit code.

    Usage errors (unknown option, missing argument) are printed by typer itself, exit code 2.
    SIGINT/SIGTERM unwind the command (cleanup runs) and exit 130/143 with one line.
    """
    from edgekit.cli.guard import os_error_line, signals_unwind
    from edgekit.errors import EXIT_BACKEND, EXIT_BAD_INPUT, EXIT_INTERRUPTED, Signalled

    try:
        with signals_unwind():
            app()
    except EdgekitError as e:
        _fail(str(e), e.exit_code)
    except Signalled as e:
        _fail(str(e), e.exit_code)
    except KeyboardInterrupt:  # SIGINT raised as such where our handler was not installed
        _fail("interrupted", EXIT_INTERRUPTED)
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").partition(".")[0])
        if extra is None:
            _internal(e)
        _fail(
            f"this needs {e.name}, which is not installed here: pip install 'edgekit[{extra}]'",
            EXIT_BACKEND,
        )
    except OSError as e:  # the OS refused (full disk, permissions...): the user's to fix
        _fail(os_error_line(e), EXIT_BAD_INPUT)
    except Exception as e:
        _internal(e)


# optional packages -> the extra that installs them (a command that needs one exits 3)
EXTRAS = {"torch": "compress", "onnxscript": "compress", "safetensors": "compress",
          "matplotlib": "plots", "gymnasium": "sim", "mujoco": "sim", "tensorrt": "tensorrt",
          "diffusers": "user-models", "transformers": "user-models"}  # fmt: skip


def _internal(e: BaseException) -> None:
    if _state["debug"]:
        traceback.print_exc()
    print(
        f"internal error: {type(e).__name__}: {e} (rerun with --debug and report it)",
        file=sys.stderr,
    )
    sys.exit(EXIT_INTERNAL)


def _fail(message: str, code: int) -> None:
    if _state["debug"]:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
