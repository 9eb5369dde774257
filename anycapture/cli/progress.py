"""What a terminal shows while ``render`` runs: the stage, then image counts.

On a terminal (stderr is a TTY) and without ``--quiet``: a rich live display from
the first second: a spinner naming the stage (reading the options, loading the
model, which weights) and, once images flow, one bar for forward passes and one
for drawing, each with ``done/total`` counts.  Anywhere else it prints nothing,
so logs and pipes see exactly what they saw before.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["RunProgress"]


class RunProgress:
    """A context manager; every method is a no-op when the display is off."""

    def __init__(self, quiet: bool, console: Any = None) -> None:
        self.enabled = not quiet and (console is not None or sys.stderr.isatty())
        self._console = console
        self._bar: Any = None
        self._stage: Any = None
        self._forward: Any = None
        self._drawn: Any = None

    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        console = self._console or Console(stderr=True)
        self._bar = Progress(
            SpinnerColumn(),
            # a long stage ("vit_small_patch16_224 loaded, random weights; first forward
            # pass") wraps instead of being cut to "first forward p..." at 80 columns
            TextColumn("{task.description}", table_column=Column(overflow="fold", ratio=2)),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._stage = self._bar.add_task("starting", total=None)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def stage(self, text: str) -> None:
        """What is happening now (loading the model, which weights...)."""
        if self._bar is not None:  # shown again after the image bars (writing index.html)
            self._bar.update(self._stage, description=text, visible=True)

    def say(self, line: str) -> None:
        """A line that stays above the live display (a warning, a skipped input)."""
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr)

    def images(self, total: int, forward: bool = True) -> None:
        """Images start flowing: bars for forward passes (when a model runs) and drawing."""
        if self._bar is None:
            return
        self._bar.update(self._stage, visible=False)
        if forward:
            self._forward = self._bar.add_task("forward passes (images)", total=total)
        self._drawn = self._bar.add_task("drawing figures (images)", total=total)

    def forwarded(self, count: int) -> None:
        if self._bar is not None and self._forward is not None:
            self._bar.advance(self._forward, count)

    def drawn(self, _path: Path) -> None:
        if self._bar is not None and self._drawn is not None:
            self._bar.advance(self._drawn)
