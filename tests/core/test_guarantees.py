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
