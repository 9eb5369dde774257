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

from .figures import FigureRequest, render_figure

__all__ = ["Deliver", "FigureDrawer"]

Deliver = Callable[[bytes | None, str | None], None]
"""Receives a figure's PNG bytes, or None and the reason it cannot be drawn."""


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _draw(kind: str, style: str, request: FigureRequest) -> tuple[bytes | None, str | None]:
    try:
        return render_figure(kind, style, request), None
    except ValueError as exc:  # this figure does not apply to this model or image
        return None, str(exc)


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
        self._queue: deque[tuple[Future[tuple[bytes | None, str | None]] | None, Callable]] = (
            deque()
        )
        self._limit = 4 * jobs

    def draw(self, kind: str, style: str, request: FigureRequest, deliver: Deliver) -> None:
        """Draw one figure and hand the result to ``deliver``, in order."""
        if self._pool is None:
            deliver(*_draw(kind, style, request))
            return
        self._queue.append((self._pool.submit(_draw, kind, style, request), deliver))
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
