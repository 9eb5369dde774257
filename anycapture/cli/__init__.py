"""The ``anycapture`` command: ``render`` figures and list ``sites``."""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import Annotated, TextIO

import typer

from .. import __version__
from ._common import create_app
from .errors import run_command
from .render import render
from .sites import sites

QUICK_START = """Capture attention maps from PyTorch models, without editing their code, and \
render figures.

\b
[bold]Quick start[/bold]
  anycapture render --model demo --image assets/demo/scene0.png
      a tiny ViT that ships with anycapture: meaningful maps, offline
  anycapture render -m vit_small -i cat.jpg -i photos/ --html
      a timm model, many images, a web page (DIR/index.html)
  anycapture render -m demo -i scene.png --figures cls,rollout,layers
  anycapture sites -m vit_small    attention layers, heads, token layout
  anycapture render --help         every option, in groups

Figures and manifest.json go to ./anycapture-out (--out); a re-run replaces them. \
Exit codes: 0 done, 2 bad usage or input, 3 done but some inputs skipped, 1 failure, \
130 interrupted.  Shell completion: anycapture --install-completion.
"""

app = create_app("anycapture", QUICK_START, [("render", render), ("sites", sites)])


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
    """Capture attention maps from PyTorch models and render figures (see Quick start)."""


def main(args: Sequence[str] | None = None) -> None:
    """The console script: run the CLI, map any exception to an exit code, exit."""
    sys.stderr = _TolerantStream(sys.stderr)
    code = run_command(app, sys.argv[1:] if args is None else args, final=True)
    if args is None:  # the console script: its process ends here
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown: every file is written and
    closed, every worker joined, by now; tearing down torch, matplotlib and thousands
    of modules took 1-4 s after the last line was printed."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed (None), full, or gone
            pass
    os._exit(code)


class _TolerantStream(io.TextIOBase):
    """stderr that a closed descriptor (``2>&-``) or a full device (``2>/dev/full``)
    cannot fail: what cannot be written is dropped, and the exit code still tells how
    the run ended (it was 1, from the first note, for runs that had worked)."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            if self._stream is not None:
                self._stream.write(text)
        except (OSError, ValueError):
            self._stream = None
        return len(text)

    def flush(self) -> None:
        try:
            if self._stream is not None:
                self._stream.flush()
        except (OSError, ValueError):
            self._stream = None

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("stderr is closed")
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


__all__ = ["app", "main"]
