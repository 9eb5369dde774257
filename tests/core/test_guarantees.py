"""Reliability guarantees of the capture core (issue 6)."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np

from anycapture import capture
from anycapture.decorator import GetLocal


def test_bounded_cache_stays_flat_over_1000_calls(gl: GetLocal) -> None:
    @gl("big")
    def f(i: int) -> int:
        big = np.full(100_000, i, dtype=np.float32)  # 400 kB each
        return i

    gl.activate(max_calls=5)
    for i in range(50):  # warm up: the bound is reached
        f(i)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    for i in range(1000):
        f(i)
    grown = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    (values,) = gl.cache.values()
    assert len(values) == 5 and values[-1][0] == 999
    # tracing began after warm-up: what is still held is at most the 5 newest arrays
    # (2 MB), not 1000 of them (400 MB)
    assert grown <= 5 * 400_000 + 100_000, f"held {grown} bytes after 1000 bounded calls"


def test_capture_threads_lose_no_records() -> None:
    def work(self, i):  # type: ignore[no-untyped-def]
        attn = i * 2
        return attn

    n_threads, per_thread = 6, 1500
    owners = [object() for _ in range(n_threads)]
    barrier = threading.Barrier(n_threads)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            work(owners[t], t * per_thread + i)

    with capture(work, "attn") as cap:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(cap.records) == n_threads * per_thread
    assert sorted(cap.cache[f"{work.__qualname__}.attn"]) == [
        2 * i for i in range(n_threads * per_thread)
    ]
    by_owner = cap.by_instance({id(o): str(t) for t, o in enumerate(owners)})
    assert {k: len(v) for k, v in by_owner.items()} == {
        str(t): per_thread for t in range(n_threads)
    }


def test_capture_bounded_records() -> None:
    def f(self, i):  # type: ignore[no-untyped-def]
        attn = i
        return attn

    with capture(f, "attn", max_calls=3) as cap:
        for i in range(100):
            f(None, i)
    assert [r.values[f"{f.__qualname__}.attn"] for r in cap.records] == [97, 98, 99]
    assert list(cap.cache[f"{f.__qualname__}.attn"]) == [97, 98, 99]


def test_a_value_that_cannot_be_stored_never_makes_the_call_raise(gl) -> None:  # type: ignore[no-untyped-def]
    """A dict that holds itself (or a tensor numpy cannot take) is skipped with one
    warning per key; the user's function returns as it would, later values record."""
    import pytest

    from anycapture import capture
    from anycapture.recorder import CaptureWarning

    def build(x: int) -> object:
        out: object = x
        if x < 0:
            looped: dict[str, object] = {}
            looped["self"] = looped
            out = looped
        return out

    gl("out")(build)
    gl.activate()
    with pytest.warns(CaptureWarning, match=r"build.out: a dict that cannot be stored"):
        assert build(-1)["self"]["self"] is not None
    assert build(2) == 2 and list(gl.cache.values()) == [[2]]
    gl.deactivate()
    with capture(build, "out") as cap, pytest.warns(CaptureWarning, match="cannot be stored"):
        build(-1)
        build(3)
    assert list(cap.cache.values()) == [[3]]


def test_python_api_errors_are_anycapture_errors() -> None:
    import pytest

    from anycapture import capture
    from anycapture.errors import UsageError

    with pytest.raises(UsageError, match="max_calls must be a positive integer"):
        capture("json:dumps", "obj", max_calls=0)
    with pytest.raises(UsageError, match=r"cannot import no\.such\.module"):
        capture("no.such.module:f", "x")
    with pytest.raises(UsageError, match="must look like"):
        capture("nocolon", "x")
