"""Drawing figures in worker processes, delivered in the order they were asked for.

Figures are CPU-bound and independent of each other, so a batch run can draw them
in a pool of processes (each keeps its own cached matplotlib templates) while the
main process runs the model and writes files.  Every result, and every action
queued with :meth:`FigureDrawer.then`, is delivered in submission order, so the
files, the manifest and its notes do not depend on the number of workers.
Workers ignore Ctrl-C: the main process decides what counts as finished.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any

from ..errors import AnycaptureError
from .registry import Drawing, Drawn

__all__ = ["Deliver", "FigureDrawer", "Outcome"]

Outcome = tuple[Drawn | None, str | None]
"""A figure drawn (PNG bytes and manifest values), or None and why it cannot be."""

Deliver = Callable[[Drawn | None, str | None], None]
"""Receives a figure's drawing, or None and the reason it cannot be drawn."""


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _draw(function: Callable[[Any], Drawing], payload: Any) -> Outcome:
    try:
        drawing = function(payload)
    except AnycaptureError as exc:  # this figure does not apply to this model or image
        return None, str(exc)
    return (drawing if isinstance(drawing, Drawn) else Drawn(drawing, {})), None


class FigureDrawer:
    """Draws figures here (``jobs=0``) or in ``jobs`` worker processes.

    At most ``4 * jobs`` figures wait at a time, so memory stays bounded however
    many images a run has.  Use as a context manager: leaving it, normally or by
    an exception (Ctrl-C included), cancels what has not started.
    """

    def __init__(self, jobs: int = 0) -> None:
        if jobs < 0:
            raise ValueError(f"jobs must be 0 (draw here) or a positive count, got {jobs}")
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        if jobs:
            # spawn: the main process holds torch's threads, which fork does not copy safely
            self._pool = ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
        self._queue: deque[tuple[Future[Outcome] | None, Callable]] = deque()
        self._limit = 4 * jobs

    def draw(self, function: Callable[[Any], Drawing], payload: Any, deliver: Deliver) -> None:
        """``function(payload)`` (a kind's drawing function, pickled by reference for
        workers) and hand the result to ``deliver``, in order."""
        if self._pool is None:
            deliver(*_draw(function, payload))
            return
        self._queue.append((self._pool.submit(_draw, function, payload), deliver))
        self._deliver_until(self._limit)

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` once everything asked for before it has been delivered."""
        if not self._queue:
            action()
        else:
            self._queue.append((None, action))

    def finish(self) -> None:
        """Wait for every figure asked for and deliver it."""
        self._deliver_until(0)

    def _deliver_until(self, remaining: int) -> None:
        while len(self._queue) > remaining:
            future, callback = self._queue.popleft()
            if future is None:
                callback()
            else:
                callback(*future.result())

    def close(self) -> None:
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> FigureDrawer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
