"""The recorder costs at most one extra frame: a function that works at recursion
depth N works captured at depth N - 1 (``capture()`` and ``get_local``)."""

from __future__ import annotations

import gc
import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anycapture import capture
from anycapture.decorator import GetLocal

SOURCE = """
    import anycapture

    def walk(n):
        attn = n * 2
        if n:
            return walk(n - 1)
        return attn

    @anycapture.get_local('attn')
    def seed_walk(n):
        attn = n * 2
        if n:
            return seed_walk(n - 1)
        return attn
"""

LIMIT = 400


@pytest.fixture
def deep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    (tmp_path / "deeplib.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(LIMIT)  # small, so the search is quick and the margin exact
    try:
        yield importlib.import_module("deeplib")
    finally:
        sys.setrecursionlimit(previous)
        sys.modules.pop("deeplib", None)


def _deepest(call: Callable[[int], object]) -> int:
    """The largest n for which ``call(n)`` returns instead of raising RecursionError.

    The garbage collector is off while searching: a collection that happens to run
    at the deepest point calls weakref callbacks (Python frames of their own) there,
    which is not what the recorder costs (earlier tests leave such garbage behind).
    """
    gc.collect()
    gc.disable()
    try:
        low, high = 0, LIMIT
        while low < high:
            middle = (low + high + 1) // 2
            try:
                call(middle)
            except RecursionError:
                high = middle - 1
            else:
                low = middle
        return low
    finally:
        gc.enable()


def test_capture_costs_at_most_one_frame(deep) -> None:  # type: ignore[no-untyped-def]
    plain = _deepest(deep.walk)
    assert 50 < plain < LIMIT
    with capture("deeplib:walk", "attn") as cap:
        deep.walk(3)
        assert cap.cache["walk.attn"] == [0, 2, 4, 6]  # innermost returns first
        captured = _deepest(deep.walk)
    assert captured >= plain - 1, (plain, captured)


def test_get_local_costs_at_most_one_frame(gl: GetLocal, deep) -> None:  # type: ignore[no-untyped-def]
    plain = _deepest(deep.seed_walk)
    gl.activate()
    captured = _deepest(deep.seed_walk)
    assert captured >= plain - 1, (plain, captured)
    gl.clear()
    deep.seed_walk(2)
    assert gl.cache["seed_walk.attn"] == [0, 2, 4]
