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
