"""The drawing pool leaves no thread behind for Python's exit hook: closing it joins the
pool's manager thread (left running, it raced the interpreter's exit: "Exception ignored
in _python_exit ... OSError: [Errno 9] Bad file descriptor", about 1 run in 20)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("matplotlib")

from anycapture.render.pool import FigureDrawer


def _managers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "ExecutorManager" in type(t).__name__]


@pytest.mark.parametrize("interrupted", [False, True])
def test_closing_joins_the_pools_manager_thread(interrupted: bool) -> None:
    delivered = []
    drawer = FigureDrawer(1)
    drawer.draw(len, b"four", lambda drawn, problem: delivered.append((drawn.png, problem)))
    drawer.finish()
    assert delivered == [(4, None)] and _managers()
    drawer.close(interrupted=interrupted)
    assert not _managers()


@pytest.mark.slow
def test_an_interrupted_run_does_not_wait_for_a_long_figure() -> None:
    """A worker busy with one figure (a 4096-head sheet drew for 400 s) is killed after
    the grace period instead of holding a Ctrl-C'd or SIGTERM'd run for minutes (a
    scheduler kills at 30 s); bench/stop_latency.py measures the delay."""
    import time

    from anycapture.render.pool import STOP_GRACE_S

    drawer = FigureDrawer(1)
    drawer.draw(time.sleep, 120, lambda drawn, problem: None)
    future = drawer._queue[0][0]
    while not future.running():
        time.sleep(0.05)
    workers = list(drawer._pool._processes.values())
    started = time.monotonic()
    drawer.close(interrupted=True)
    assert not any(worker.is_alive() for worker in workers)
    assert time.monotonic() - started < 60, "waited for the 120 s figure"
    assert STOP_GRACE_S <= 5
