"""The seed API of ``get_local`` and each way the seeds broke (capture-notes.md)."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anycapture import CaptureWarning, InstrumentationError
from anycapture.decorator import GetLocal


def test_seed_readme_flow(gl: GetLocal) -> None:
    @gl("attention_map", "query")
    def attention(x: int) -> int:
        query = x + 1
        attention_map = query * 2
        return attention_map - 1

    gl.activate()
    assert attention(1) == 3
    assert attention(2) == 5
    assert gl.cache == {
        "test_seed_readme_flow.<locals>.attention.attention_map": [4, 6],
        "test_seed_readme_flow.<locals>.attention.query": [2, 3],
    }
    gl.clear()
    assert len(gl.cache) == 0
    attention(3)
    assert list(gl.cache.values()) == [[8], [4]]
    gl.deactivate()
    attention(4)
    assert list(gl.cache.values()) == [[8], [4]]


def test_method_key_is_class_qualname(gl: GetLocal) -> None:
    class Attention:
        @gl("attn")
        def forward(self, x: int) -> int:
            attn = x * 10
            return attn + 1

    gl.activate()
    Attention().forward(2)
    assert gl.cache == {"test_method_key_is_class_qualname.<locals>.Attention.forward.attn": [20]}


def _write_module(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))


MODEL_SRC = """
    import anycapture

    @anycapture.get_local('attn')
    def forward(x):
        attn = x + 100
        return attn * 2
"""


@pytest.mark.parametrize("activate_first", [True, False], ids=["before-import", "after-import"])
def test_activation_before_or_after_import(
    gl: GetLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, activate_first: bool
) -> None:
    name = f"seedmodel_{activate_first}"
    _write_module(tmp_path, name, MODEL_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    if activate_first:
        gl.activate()
    module = importlib.import_module(name)
    early_reference = module.forward  # taken before activation in the after-import case
    if not activate_first:
        gl.activate()
    assert early_reference(1) == 202
    assert gl.cache == {"forward.attn": [101]}
    sys.modules.pop(name)


def test_deactivate_restores_original_code_and_inactive_is_untouched(gl: GetLocal) -> None:
    def f(x: int) -> int:
        y = x + 1
        return y

    original = f.__code__
    decorated = gl("y")(f)
    assert decorated is f and f.__code__ is original  # inactive: nothing rewritten
    gl.activate()
    assert f.__code__ is not original
    gl.deactivate()
    assert f.__code__ is original


def test_every_return_path(gl: GetLocal) -> None:
    @gl("x")
    def f(a: int) -> object:
        x = a
        if a == 0:
            return "early"
        elif a == 1:
            x = 11
            return None
        for i in range(5):
            x = i
            if i == a - 2:
                return i * 100
        while True:
            x = -1
            break
        try:
            x = 42
            if a == 9:
                raise ValueError
            return x
        except ValueError:
            x = 99
            return "except"
        finally:
            x += 1

    gl.activate()
    results = [f(a) for a in (0, 1, 3, 7, 9)]
    assert results == ["early", None, 100, 42, "except"]
    assert gl.cache["test_every_return_path.<locals>.f.x"] == [0, 11, 1, 43, 100]


def test_return_constant_and_implicit_none(gl: GetLocal) -> None:
    @gl("v")
    def f(a: int) -> object:
        v = a * 3
        if a:
            return None
        return 7

    @gl("v")
    def g(a: int) -> None:
        v = a

    gl.activate()
    assert (f(1), f(0), g(5)) == (None, 7, None)
    values = list(gl.cache.values())
    assert values == [[3, 0], [5]]


def test_recursion_records_every_call(gl: GetLocal) -> None:
    @gl("n2")
    def fact(n: int) -> int:
        n2 = n * n
        return 1 if n <= 1 else n * fact(n - 1)

    gl.activate()
    assert fact(4) == 24
    # values arrive as calls return: innermost first
    assert list(gl.cache.values()) == [[1, 4, 9, 16]]


def test_unassigned_name_warns_once_and_never_crashes(gl: GetLocal) -> None:
    @gl("attn")
    def forward(fused: bool) -> str:
        if fused:
            return "sdpa"
        attn = "map"
        return attn

    gl.activate()
    with pytest.warns(CaptureWarning, match=r"forward\.attn was not assigned.*fused_attn"):
        assert forward(True) == "sdpa"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert forward(True) == "sdpa"  # reported once only
        assert forward(False) == "map"
    assert list(gl.cache.values()) == [["map"]]


def test_deleted_name_is_reported_not_crashing(gl: GetLocal) -> None:
    @gl("tmp")
    def f() -> int:
        tmp = [1, 2]
        n = len(tmp)
        del tmp
        return n

    gl.activate()
    with pytest.warns(CaptureWarning, match="or was deleted"):
        assert f() == 2
    assert gl.cache == {}


def test_cell_variable_yields_value_not_cell(gl: GetLocal) -> None:
    @gl("x", "k")
    def f(k: int) -> int:
        x = k + 1
        inner = lambda: x + k  # noqa: E731
        x = inner()
        return x

    gl.activate()
    assert f(1) == 3
    assert list(gl.cache.values()) == [[3], [1]]


def test_free_variable(gl: GetLocal) -> None:
    scale = 5

    @gl("scale")
    def f(a: int) -> int:
        return a * scale

    gl.activate()
    assert f(2) == 10
    assert list(gl.cache.values()) == [[5]]


@pytest.mark.parametrize("order", ["get_local-inside", "get_local-outside"])
def test_staticmethod_and_classmethod_in_either_order(gl: GetLocal, order: str) -> None:
    if order == "get_local-inside":

        class C:
            @staticmethod
            @gl("s")
            def st(a: int) -> int:
                s = a + 1
                return s

            @classmethod
            @gl("c")
            def cm(cls, a: int) -> int:
                c = a + 2
                return c

    else:

        class C:  # type: ignore[no-redef]
            @gl("s")
            @staticmethod
            def st(a: int) -> int:
                s = a + 1
                return s

            @gl("c")
            @classmethod
            def cm(cls, a: int) -> int:
                c = a + 2
                return c

    gl.activate()
    assert (C.st(1), C().st(1), C.cm(1), C().cm(1)) == (2, 2, 3, 3)
    assert sorted(len(v) for v in gl.cache.values()) == [2, 2]
    assert isinstance(C.__dict__["st"], staticmethod)
    assert isinstance(C.__dict__["cm"], classmethod)


def test_functools_wraps_wrapper_reaches_inner_function(gl: GetLocal) -> None:
    def logged(fn):  # type: ignore[no-untyped-def]
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            result = fn(*args, **kwargs)
            return ("wrapped", result)

        return wrapper

    @gl("inner")
    @logged
    def f(a: int) -> int:
        inner = a * 7
        return inner

    gl.activate()
    assert f(2) == ("wrapped", 14)
    assert list(gl.cache.values()) == [[14]]
    assert f.__name__ == "f"


def test_signature_kwdefaults_identity_preserved(gl: GetLocal) -> None:
    def f(a: int, b: int = 2, *rest: int, scale: int = 10, **extra: int) -> int:
        out = (a + b + sum(rest)) * scale + len(extra)
        return out

    signature = inspect.signature(f)
    decorated = gl("out")(f)
    gl.activate()
    assert decorated is f
    assert inspect.signature(f) == signature
    assert f.__kwdefaults__ == {"scale": 10}
    assert f.__defaults__ == (2,)
    assert f(1) == 30 and f(1, 1, 1, scale=2, z=0) == 7
    assert list(gl.cache.values()) == [[30, 7]]


def test_refuses_class_generator_coroutine_naming_them(gl: GetLocal) -> None:
    class Model:
        pass

    def gen():  # type: ignore[no-untyped-def]
        x = 1
        yield x

    async def coro() -> int:
        x = 1
        return x

    with pytest.raises(InstrumentationError, match=r"class .*Model.*Model.forward"):
        gl("x")(Model)
    with pytest.raises(InstrumentationError, match=r"generator function .*gen"):
        gl("x")(gen)
    with pytest.raises(InstrumentationError, match=r"coroutine function .*coro"):
        gl("x")(coro)
    with pytest.raises(InstrumentationError, match="only Python functions"):
        gl("x")(len)


def test_unknown_name_and_bare_decorator_are_clear_errors(gl: GetLocal) -> None:
    def f(a: int) -> int:
        attn = a
        return attn

    gl("atn")(f)  # the seeds import it: a warning once active, never an error
    with pytest.warns(UserWarning, match=r"'atn' but .*f has no such local \(its locals: a, attn"):
        gl.activate()
    with pytest.raises(TypeError, match=r"@get_local\('attn'\)"):
        gl(f)  # type: ignore[arg-type]


def test_exception_propagates_unchanged_and_records_nothing(gl: GetLocal) -> None:
    error = KeyError("boom")

    @gl("x")
    def f() -> None:
        x = 1
        raise error

    gl.activate()
    with pytest.raises(KeyError) as info:
        f()
    assert info.value is error
    assert gl.cache == {}


def test_threads_lose_nothing(gl: GetLocal) -> None:
    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    gl.activate()
    n_threads, per_thread = 8, 2000
    barrier = threading.Barrier(n_threads)

    def worker(base: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            f(base + i)

    threads = [threading.Thread(target=worker, args=(t * per_thread,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (values,) = gl.cache.values()
    assert sorted(values) == list(range(n_threads * per_thread))


def test_same_qualname_in_two_modules_does_not_collide(
    gl: GetLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(tmp_path, "twin_a", MODEL_SRC)
    _write_module(tmp_path, "twin_b", MODEL_SRC.replace("x + 100", "x + 200"))
    monkeypatch.syspath_prepend(str(tmp_path))
    a = importlib.import_module("twin_a")
    b = importlib.import_module("twin_b")
    gl.activate()
    b.forward(1)  # the first to record owns the plain key, whatever the import order
    with pytest.warns(UserWarning, match="record 'forward.attn' .one in twin_b, one in twin_a"):
        a.forward(1)
    b.forward(2)
    assert gl.cache == {"forward.attn": [201, 202], "twin_a:forward.attn": [101]}
    assert gl.keys_of(a.forward) == ["twin_a:forward.attn"]
    gl.clear()  # ownership starts again: now a records first
    a.forward(3)
    assert gl.cache == {"forward.attn": [103]}
    sys.modules.pop("twin_a")
    sys.modules.pop("twin_b")


def test_max_calls_keeps_newest(gl: GetLocal) -> None:
    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    gl.activate(max_calls=3)
    for i in range(1000):
        f(i)
    assert [list(v) for v in gl.cache.values()] == [[997, 998, 999]]


def test_per_function_options_override_activate(gl: GetLocal) -> None:
    @gl("v", max_calls=1)
    def f(i: int) -> int:
        v = i
        return v

    @gl("w")
    def g(i: int) -> int:
        w = i
        return w

    gl.activate(max_calls=2)
    for i in range(5):
        f(i)
        g(i)
    assert [list(v) for v in gl.cache.values()] == [[4], [3, 4]]


def test_numpy_values_and_float16_option(gl: GetLocal) -> None:
    @gl("a")
    def f() -> int:
        a = np.ones((2, 2), dtype=np.float32)
        return 0

    gl.activate(float16=True)
    f()
    (stored,) = gl.cache.values()
    assert stored[0].dtype == np.float16


def test_bad_options_fail_at_decoration(gl: GetLocal) -> None:
    with pytest.raises(ValueError, match="keep_grad=True needs keep_tensors=True"):
        gl("a", keep_grad=True)
    with pytest.raises(ValueError, match="max_calls"):
        gl("a", max_calls=0)


def test_fast_path_never_bypasses_conversion(gl: GetLocal) -> None:
    """Once ints go straight to the list, a value that needs converting still does not."""

    @gl("a")
    def f(kind: str) -> int:
        a = np.ones(2, dtype=np.float64) if kind == "array" else 7
        return 0

    gl.activate(float16=True)
    for kind in ["int", "int", "array", "int", "array", "array", "int"]:
        f(kind)
    (stored,) = gl.cache.values()
    kinds = ["array" if isinstance(v, np.ndarray) else type(v).__name__ for v in stored]
    assert kinds == ["int", "int", "array", "int", "array", "array", "int"]
    assert all(v.dtype == np.float16 for v in stored if isinstance(v, np.ndarray))


def test_fast_path_after_clear_and_reactivate(gl: GetLocal) -> None:
    """The bypass never outlives the list it appends to, nor hides a missing value."""

    @gl("v")
    def f(i: int) -> int:
        if i < 0:
            return 0
        v = i
        return v

    gl.activate()
    for i in range(3):
        f(i)
    gl.clear()
    f(10)
    assert gl.cache == {"test_fast_path_after_clear_and_reactivate.<locals>.f.v": [10]}
    old_lists = list(gl.cache.values())
    gl.activate(max_calls=2)  # bounded containers: values must go to them, not the old ones
    assert [list(v) for v in gl.cache.values()] == [[10]]  # re-activation keeps values
    for i in range(5):
        f(i)
    assert [list(v) for v in gl.cache.values()] == [[3, 4]]
    assert old_lists == [[10]]
    with pytest.warns(CaptureWarning, match="f.v was not assigned"):
        f(-1)  # the bypass is on for int; the missing value still reaches the recorder
    assert [list(v) for v in gl.cache.values()] == [[3, 4]]


def test_reactivation_never_unsets_the_fast_append(gl: GetLocal) -> None:
    """A thread already past the type check when activate() runs again still finds a
    callable append (it lands in the old list, which is harmless), never None."""

    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    def appends() -> list[Any]:
        # the append f's instrumented code reads, from its one hook global
        return [f.__globals__[n].append for n in f.__code__.co_names if "_hook_" in n]

    gl.activate()
    f(1)
    f(2)
    assert appends() and all(callable(a) for a in appends())
    gl.activate(max_calls=3)
    assert appends() and all(callable(a) for a in appends())
    f(3)
    assert [list(v) for v in gl.cache.values()] == [[1, 2, 3]]  # kept, then bounded
