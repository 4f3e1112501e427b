"""The ``edgekit`` command: parse, call the library, render. Nothing heavy at import time.

``app`` is the typer app with the root options; each command lives in :mod:`edgekit.cli.commands`
(one module per command), its human-readable output in :mod:`edgekit.cli.render`, the options
shared by the commands that load a model in :mod:`edgekit.cli.options`.

Exit codes: 0 ok, 1 a gate failed, 2 bad usage or input, 3 missing backend/device, 4 internal
error. Errors print one line (usage errors too); ``--debug`` adds the traceback.

Conventions every command keeps: options are checked before anything heavy (torch, a model)
loads; ``--json FILE|-`` and ``--quiet`` route the output (:func:`edgekit.cli.guard.output`);
``CI``, ``NO_COLOR``, ``FORCE_COLOR`` and the ``EDGEKIT_*`` defaults are read in
:mod:`edgekit.cli.env`; help is plain text that wraps to the terminal, with one example each.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import typer

from edgekit.cli.commands import register
from edgekit.cli.env import ENV_DEBUG
from edgekit.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXTRAS, EdgekitError, set_debug

app = typer.Typer(
    name="edgekit",
    help="Fit a robot's AI stack on the robot: distill, quantize, export and bench stack models "
    "against control-loop budgets.",
    epilog="\b\nExample:\n  edgekit run recipes/humanoid.yaml --out out/humanoid",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: it wraps to the terminal and reads the same in CI logs
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from edgekit import __version__

        print(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", envvar=ENV_DEBUG, help="Show tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    from edgekit.plugins import allow_plugins, forget_factories
    from edgekit.usercode import default_timeout

    _state["debug"] = debug
    set_debug(debug)
    allow_plugins(False)  # per command: what one command trusted, the next (in-process) does not
    forget_factories()
    default_timeout(None)


register(app)


def main() -> None:
    """Console-script entry point: map edgekit errors to one line and an exit code.

    Usage errors (unknown option, missing argument, a value of the wrong type) are one line
    too, exit code 2. SIGINT/SIGTERM unwind the command (cleanup runs) and exit 130/143 with
    one line.
    """
    from edgekit.cli.guard import restore_output, signals_unwind
    from edgekit.errors import Signalled

    with signals_unwind():
        try:
            _main()
        except Signalled as e:  # while an error line was printed or the output restored
            restore_output()
            _fail(str(e), e.exit_code)


def entry() -> None:
    """The ``edgekit`` console script: :func:`main`, then a SIGINT/SIGTERM that arrives while
    the interpreter shuts down (torch and onnxruntime take a while after the verdict) still
    exits 130/143 with its line instead of killing the process without a word."""
    from edgekit.cli.guard import late_signals

    try:
        main()
    finally:
        late_signals()


def _main() -> None:
    from edgekit.cli.guard import os_error_line, restore_output
    from edgekit.errors import EXIT_BACKEND, EXIT_INTERRUPTED, Signalled

    try:
        code = app(prog_name="edgekit", standalone_mode=False)
    except _CLICK_ERRORS as e:
        restore_output()
        if type(e).__name__ == "NoArgsIsHelpError":  # `edgekit`, `edgekit recipe`: the help
            print(e.format_message())  # type: ignore[attr-defined]
            sys.exit(EXIT_BAD_INPUT)
        _fail(_usage_line(e), getattr(e, "exit_code", EXIT_BAD_INPUT))
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
    except BrokenPipeError:  # `edgekit models | head`: the reader left, nothing to report
        _pipe_closed()
    except OSError as e:  # the OS refused (full disk, permissions...): the user's to fix
        _fail(os_error_line(e), EXIT_BAD_INPUT)
    except Exception as e:
        _internal(e)
    finally:
        restore_output()
    if isinstance(code, int) and code:  # typer.Exit(code) from a command
        sys.exit(code)


def _pipe_closed() -> None:
    """Exit 1 without a word, and without Python's complaint when it flushes stdout at exit."""
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)


def _click_errors() -> tuple[type[BaseException], ...]:
    """click's usage errors (typer vendors click from 0.2x on; older typer uses the package)."""
    import importlib

    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            return (importlib.import_module(module).ClickException,)
        except ImportError:
            continue
    return ()


_CLICK_ERRORS = _click_errors()


def _usage_line(e: BaseException) -> str:
    """A usage error as one line, with the command's ``--help`` to read."""
    text = " ".join(str(e.format_message()).split())  # type: ignore[attr-defined]
    if text[:2].istitle():  # "No such option" -> "no such option"; "MODEL" stays
        text = text[0].lower() + text[1:]
    ctx = getattr(e, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return text.rstrip(".") + where


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
