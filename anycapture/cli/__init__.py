"""The ``anycapture`` command: ``render`` figures and list ``sites``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from .. import __version__
from ._common import create_app
from .errors import run_command
from .render import render
from .sites import sites

app = create_app(
    "anycapture",
    "Capture attention maps from PyTorch models, without editing their code, and render figures.",
    [("render", render), ("sites", sites)],
)


def _version(value: bool) -> None:
    if value:
        print(f"anycapture {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Capture attention maps from PyTorch models and render figures."""


def main(args: Sequence[str] | None = None) -> None:
    """The console script: run the CLI, map any exception to an exit code, exit."""
    sys.exit(run_command(app, sys.argv[1:] if args is None else args))


__all__ = ["app", "main"]
