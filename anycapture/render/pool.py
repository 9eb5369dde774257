"""Drawing figures in worker processes, delivered in the order they were asked for.

Figures are CPU-bound and independent of each other, so a batch run can draw them
in a pool of processes (each keeps its own cached matplotlib templates) while the
main process runs the model and writes files.  Every result, and every action
queued with :meth:`FigureDrawer.then`, is delivered in submission order, so the
files, the manifest and its notes do not depend on the number of workers.
Workers ignore Ctrl-C and SIGTERM (a terminal or a job scheduler signals the whole
process group): the main process decides what counts as finished, and when it is
interrupted it cancels what has not started and lets each worker end after the
figure it is drawing.  A worker whose parent dies exits.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from ..errors import AnycaptureError
from ..interrupts import ignore_signals
from .registry import Drawing, Drawn

__all__ = ["Deliver", "FigureDrawer", "Outcome", "warning_note", "warnings_as_notes"]

Outcome = tuple[Drawn | None, str | None]
"""A figure drawn (PNG bytes and manifest values), or None and why it cannot be."""

Deliver = Callable[[Drawn | None, str | None], None]
"""Receives a figure's drawing, or None and the reason it cannot be drawn."""

STOP_GRACE_S = 4.0  # an interrupted run waits this long for a figure being drawn (a
# scheduler kills at 30 s after its SIGTERM: the run must have ended well before)

Drawing_ = tuple[Drawn | None, str | None, tuple[str, ...]]  # an outcome + its warnings


def warning_note(warning: warnings.WarningMessage) -> str:
    """A warning (matplotlib, numpy, Pillow...) as one line for the run's notes."""
    first = str(warning.message).strip().splitlines() or [""]
    return f"{warning.category.__name__}: {first[0]}"


@contextmanager
def warnings_as_notes(on_note: Callable[[str], None]) -> Iterator[None]:
    """Warnings raised inside (the forward pass, reading images) go to ``on_note`` as
    one line each when the block ends, instead of stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            for warning in caught:
                on_note(warning_note(warning))


def _start_worker() -> None:
    ignore_signals()  # SIGINT, SIGTERM, SIGHUP: the main process's
    parent = os.getppid()

    def watch() -> None:  # the parent killed outright (SIGKILL): no orphans left behind
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="anycapture-parent-watch", daemon=True).start()


def _draw(function: Callable[[Any], Drawing], payload: Any) -> Drawing_:
    """Draw one figure; its warnings come back as lines (never printed by a worker)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            drawing = function(payload)
        except AnycaptureError as exc:  # this figure does not apply to this model or image
            return None, str(exc), tuple(warning_note(w) for w in caught)
    drawn = drawing if isinstance(drawing, Drawn) else Drawn(drawing, {})
    return drawn, None, tuple(warning_note(w) for w in caught)


class FigureDrawer:
    """Draws figures here (``jobs=0``) or in ``jobs`` worker processes.

    At most ``4 * jobs`` figures wait at a time, so memory stays bounded however
    many images a run has.  Use as a context manager: leaving it, normally or by
    an exception (Ctrl-C included), cancels what has not started.
    """

    def __init__(self, jobs: int = 0, on_note: Callable[[str], None] | None = None) -> None:
        if jobs < 0:
            raise ValueError(f"jobs must be 0 (draw here) or a positive count, got {jobs}")
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        if jobs:
            # spawn: the main process holds torch's threads, which fork does not copy safely
            self._pool = ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
            )
        self._on_note = on_note  # receives each drawing's warnings, in order
        self._queue: deque[tuple[Future[Drawing_] | None, Callable]] = deque()
        self._limit = 4 * jobs

    def draw(self, function: Callable[[Any], Drawing], payload: Any, deliver: Deliver) -> None:
        """``function(payload)`` (a kind's drawing function, pickled by reference for
        workers) and hand the result to ``deliver``, in order."""
        if self._pool is None:
            self._hand_over(_draw(function, payload), deliver)
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
                self._hand_over(future.result(), callback)

    def _hand_over(self, outcome: Drawing_, deliver: Deliver) -> None:
        drawn, problem, warned = outcome
        for text in warned:
            if self._on_note is not None:
                self._on_note(text)
        deliver(drawn, problem)

    def close(self, interrupted: bool = False) -> None:
        """Stop the workers: pending figures are cancelled; each worker finishes the
        figure it is drawing (never killed mid-message: the pool's reader would wait
        for the rest forever) and exits.  When ``interrupted``, a worker still busy
        after ``STOP_GRACE_S`` is killed."""
        self._queue.clear()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not interrupted:  # joins the pool's manager thread: none is left for Python's
            pool.shutdown(wait=True, cancel_futures=True)  # exit hook to wake (EBADF race)
            return
        workers = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():  # they ignore SIGINT and SIGTERM: only SIGKILL
                worker.kill()
        if manager is not None:
            manager.join(timeout=STOP_GRACE_S)

    def __enter__(self) -> FigureDrawer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(interrupted=isinstance(exc, KeyboardInterrupt))
