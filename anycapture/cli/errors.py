"""The CLI's one error handler: every exception -> one line on stderr and an exit code.

- 0: done; 3: finished, but some inputs were skipped (each named on stderr and
  listed in manifest.json under ``skipped``); 2: bad usage or input the tool
  recognised (:class:`~anycapture.errors.UsageError` and typer/click's own parameter
  errors); 1: any other failure while running
  (an :class:`~anycapture.errors.AnycaptureError`, or an exception from torch,
  PIL... even a ``ValueError``); 130: interrupted (Ctrl-C, any number of times);
  143: terminated (SIGTERM), stopped the same way (see ``anycapture/interrupts.py``).
- Tracebacks only with ``--debug`` or ``ANYCAPTURE_DEBUG=1``.

Modelled on huggingface_hub's CLI: commands raise, ``main()`` decides how it ends.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

import typer

try:  # typer >= 0.16 vendors click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from ..errors import AnycaptureError, UsageError
from ..interrupts import Terminated, handling_signals, signal_exit_code
from ._common import polish_help, printable

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SKIPPED",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "run_command",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3  # finished, some inputs skipped
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
INTERRUPTED = "interrupted; finished files are valid and listed in manifest.json"
TERMINATED = "terminated; finished files are valid and listed in manifest.json"
HUNG_UP = "hung up (SIGHUP); finished files are valid and listed in manifest.json"
EXIT_HANGUP = 129

# typer >= 0.16 has its own Exit and Abort; older typer raises click's
_EXITS = (typer.Exit, *(e for e in [getattr(click_exceptions, "Exit", None)] if e))
_ABORTS = (
    KeyboardInterrupt,
    typer.Abort,
    *(e for e in [getattr(click_exceptions, "Abort", None)] if e),
)


def debug_requested(args: Sequence[str]) -> bool:
    return "--debug" in args or os.environ.get("ANYCAPTURE_DEBUG", "") not in ("", "0")


def run_command(
    app: typer.Typer, args: Sequence[str], prog_name: str = "anycapture", final: bool = False
) -> int:
    """Run the CLI on ``args`` and return its exit code; the only place errors are reported.

    ``final``: the process exits next (``main()``), so after Ctrl-C or SIGTERM further
    signals stay ignored.
    """
    command = polish_help(typer.main.get_command(app))
    debug = debug_requested(args)
    complete_var = f"_{prog_name.upper()}_COMPLETE"
    if os.environ.get(complete_var):  # the shell asks for completions (--install-completion)
        try:
            command._main_shell_completion({}, prog_name, complete_var)
        except SystemExit as exc:
            return int(exc.code or 0)
    with handling_signals(final), warnings.catch_warnings():
        # library warnings are not stderr noise: a run records its own as notes
        warnings.simplefilter("ignore")
        try:
            with command.make_context(prog_name, list(args)) as ctx:
                command.invoke(ctx)
        except _EXITS as exc:
            return int(exc.exit_code or 0)
        except SystemExit as exc:  # typer's completion callbacks end with sys.exit(0)
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except click_exceptions.NoArgsIsHelpError as exc:
            return exc.exit_code  # the help text is already printed
        except click_exceptions.ClickException as exc:  # typer's own parameter checks
            return _fail(exc.format_message(), exc.exit_code)
        except _ABORTS as exc:
            code = signal_exit_code(exc)
            message = TERMINATED if isinstance(exc, Terminated) else INTERRUPTED
            return _fail(HUNG_UP if code == EXIT_HANGUP else message, code)
        except Exception as exc:
            if debug:
                raise
            return _fail(*_describe(exc))
    return EXIT_OK


def _describe(exc: Exception) -> tuple[str, int]:
    if isinstance(exc, UsageError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, AnycaptureError):
        return str(exc), EXIT_FAILURE
    where = _user_frame(exc)
    notes = [n for n in getattr(exc, "__notes__", ()) if isinstance(n, str)]
    context = "; ".join([*([f"in {where}"] if where else []), *notes])
    detail = (str(exc).strip().splitlines() or [""])[0]
    return (
        f"{type(exc).__name__}: {detail}{f' ({context})' if context else ''} "
        "(run with --debug for the traceback)",
        EXIT_FAILURE,
    )


def _user_frame(exc: BaseException) -> str:
    """Where the user's own code raised (``file:line, in function``): the innermost
    frame outside anycapture, the standard library and installed packages."""
    import sysconfig
    import traceback

    skipped = {
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),  # anycapture
        *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if frame.filename.startswith("<") or any(path.startswith(p + os.sep) for p in skipped):
            continue
        found = f"{frame.filename}:{frame.lineno}, in {frame.name}"
    return found


def _fail(message: str, code: int) -> int:
    print(f"anycapture: error: {printable(message)}", file=sys.stderr)
    return code
