"""Code written for Visualizer or AnyCapture 0.1.4 runs unchanged (issue: seed users).

Each test replays what the seeds' READMEs, their demo notebooks or real notebooks
do with the cache, or one way a seed user lost values before.
"""

from __future__ import annotations

import gc
import importlib
import sys
import textwrap
import warnings
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anycapture import capture, recorder
from anycapture.decorator import GetLocal

ATTENTION_SRC = """
    import numpy as np
    import anycapture

    class Attention:
        def __init__(self, scale):
            self.scale = scale

        @anycapture.get_local('attn')
        def forward(self, x):
            attn = np.full((1, 2, 3, 3), x * self.scale, dtype=np.float32)
            return x + 1
"""


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, src: str) -> Any:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(src))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def test_visualizer_bare_qualname_key_is_the_same_list(
    gl: GetLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Visualizer's demo notebook: ``cache['Attention.forward']`` after activate()."""
    gl.activate()
    mod = _module(tmp_path, monkeypatch, "vis_model", ATTENTION_SRC)
    blocks = [mod.Attention(s) for s in (1, 2, 3)]
    for block in blocks:
        block.forward(2)
    cache = gl.cache
    attention_maps = cache["Attention.forward"]  # Visualizer's key
    assert attention_maps is cache["Attention.forward.attn"]  # AnyCapture's key
    assert len(attention_maps) == 3 and attention_maps[2][0, 0, 0, 0] == 6
    assert "Attention.forward" in cache and cache.get("Attention.forward") is attention_maps
    assert list(cache) == ["Attention.forward.attn"] and len(cache) == 1  # listed once


def test_several_names_have_no_bare_alias(gl: GetLocal) -> None:
    @gl("a", "b")
    def f() -> int:
        a, b = 1, 2
        return a + b

    gl.activate()
    f()
    assert set(gl.cache) == {f"{f.__qualname__}.a", f"{f.__qualname__}.b"}
    with pytest.raises(KeyError):
        gl.cache[f.__qualname__]


def test_clear_keeps_handed_out_lists_and_keys_read_empty(gl: GetLocal) -> None:
    """A real notebook: ``len(cache['Attention.forward.attn'])`` after clear() is 0."""

    @gl("attn")
    def forward(x: int) -> int:
        attn = x * 2
        return attn

    gl.activate()
    key = f"{forward.__qualname__}.attn"
    forward(1)
    batch_one = gl.cache[key]
    gl.clear()
    assert len(gl.cache) == 0
    assert len(gl.cache[key]) == 0 and gl.cache[forward.__qualname__] == []
    forward(2)
    assert batch_one == [2]  # the saved list did not become the next batch's
    assert gl.cache[key] == [4] and gl.cache[key] is not batch_one
    with pytest.raises(KeyError):
        gl.cache["never.decorated"]


def test_keys_follow_who_records_first_not_import_order(
    gl: GetLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _module(tmp_path, monkeypatch, "model_one", ATTENTION_SRC)
    two = _module(tmp_path, monkeypatch, "model_two", ATTENTION_SRC)  # imported last
    gl.activate()
    two.Attention(1).forward(1)
    assert list(gl.cache) == ["Attention.forward.attn"]  # the model that ran: plain key
    with pytest.warns(UserWarning, match=r"one in model_two, one in model_one") as caught:
        one.Attention(1).forward(5)
        one.Attention(1).forward(6)
    assert len(caught) == 1
    assert len(gl.cache["Attention.forward.attn"]) == 1
    assert len(gl.cache["model_one:Attention.forward.attn"]) == 2
    assert gl.cache["model_one:Attention.forward"] is gl.cache["model_one:Attention.forward.attn"]


def test_closures_of_one_factory_lose_nothing(gl: GetLocal) -> None:
    def make(k: int) -> Any:
        @gl("v")
        def f() -> int:
            v = k
            return v

        return f

    functions = [make(k) for k in range(4)]
    gl.activate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for f in functions:
            f()
            f()
    values = sorted(v for lst in gl.cache.values() for v in lst)
    assert values == [0, 0, 1, 1, 2, 2, 3, 3]  # 3 of 4 were lost before
    assert len(gl.cache) == 4 and len(caught) == 3


def test_reactivation_keeps_recorded_values(gl: GetLocal) -> None:
    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    gl.activate()
    f(1)
    f(2)
    gl.activate()
    f(3)
    assert list(gl.cache.values()) == [[1, 2, 3]]
    gl.activate(float16=True)
    f(4)
    assert list(gl.cache.values()) == [[1, 2, 3, 4]]


def test_failed_decoration_leaves_nothing_behind(gl: GetLocal) -> None:
    def f(x: int) -> int:
        a = b = x
        return a + b

    with pytest.raises(TypeError, match="already decorated with get_local for a"):
        gl("a")(gl("a")(f))
    assert len(gl.functions) == 1
    gl("nope")(f)  # a missing local: imports as in the seeds, warns once active
    gl("b")(f)  # another name on the same function composes
    with pytest.warns(UserWarning, match="'nope' but .*f has no such local"):
        gl.activate()
    f(3)
    assert {k.rsplit(".", 1)[1]: v for k, v in gl.cache.items()} == {"a": [3], "b": [3]}


def test_a_decorator_naming_a_missing_local_imports_and_records_nothing(gl: GetLocal) -> None:
    """A public MRI model decorates with @get_local('attention_map') where the local is
    ``attn``: both seeds import it (training never activates them); active, they fail
    at the call.  Here: decoration works, the function runs unchanged, activation
    warns once per function, and nothing is recorded."""
    import warnings

    @gl("attention_map")
    def forward(x: int) -> int:
        attn = x + 1
        return attn

    assert forward(1) == 2 and gl.functions == []
    with pytest.warns(UserWarning, match=r"'attention_map' but .*forward has no such local.*attn"):
        gl.activate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per function: not again
        assert forward(2) == 3
        gl.deactivate()
        gl.activate()
    assert dict(gl.cache) == {}


def test_the_cache_pickles_and_copies_as_a_dict_of_lists(gl: GetLocal) -> None:
    """Both seeds' caches are plain dicts of lists: pickle, deepcopy (and torch.save,
    which pickles) work on ours too, bounded keys included."""
    import copy
    import pickle

    @gl("a")
    def f(x: int) -> int:
        a = x
        return a

    @gl("b", max_calls=2)
    def g(x: int) -> int:
        b = x * 2
        return b

    gl.activate()
    for i in range(3):
        f(i), g(i)
    expected = {"f.a": [0, 1, 2], "g.b": [2, 4]}
    expected = {key: expected[key.rsplit(".", 2)[-2] + "." + key[-1]] for key in gl.cache}
    for copied in (pickle.loads(pickle.dumps(gl.cache)), copy.deepcopy(gl.cache)):
        assert type(copied) is dict and copied == expected
        assert all(type(values) is list for values in copied.values())


def test_bad_option_combination_fails_once_and_changes_nothing(gl: GetLocal) -> None:
    @gl("v", keep_tensors=False)
    def f(i: int) -> int:
        v = i
        return v

    with pytest.raises(ValueError, match=f"options for {f.__qualname__}: keep_grad"):
        gl.activate(keep_tensors=True, keep_grad=True)
    assert not gl.is_active and f(1) == 1 and len(gl.cache) == 0
    gl.activate()  # a later activate works
    f(2)
    assert list(gl.cache.values()) == [[2]]


def test_anycapture_code_level_api(gl: GetLocal) -> None:
    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    assert gl.is_activated() is False
    gl.activate(max_size=2)
    assert gl.is_activated() is True and gl.get_cache() is gl.cache
    for i in range(5):
        f(i)
    assert [list(v) for v in gl.cache.values()] == [[3, 4]]
    assert gl.set_size(0) is None  # AnyCapture: non-positive means unbounded
    for i in range(3):
        f(i)
    assert [list(v) for v in gl.cache.values()] == [[3, 4, 0, 1, 2]]
    assert gl.set_size(1) == 1
    assert [list(v) for v in gl.cache.values()] == [[2]]  # existing values trimmed
    assert gl.set_collate_fn(lambda value: value * 10) is not None
    f(7)
    assert [list(v) for v in gl.cache.values()] == [[70]]
    gl.set_collate_fn(None)
    gl.is_activate = False
    f(8)
    assert gl.is_active is False and [list(v) for v in gl.cache.values()] == [[70]]
    gl.is_activate = True
    f(9)
    assert [list(v) for v in gl.cache.values()] == [[9]]
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        gl.set_collate_fn(3)  # type: ignore[arg-type]


def test_capture_holds_nothing_after_its_block(gl: GetLocal) -> None:
    class Value:
        pass

    def f() -> int:
        v = Value()
        return 1

    with capture(f, "v") as cap:
        f()
    value_ref, cap_ref = weakref.ref(cap.cache[f"{f.__qualname__}.v"][0]), weakref.ref(cap)
    del cap
    gc.collect()
    assert value_ref() is None and cap_ref() is None
    for _ in range(50):
        with capture(f, "v"):
            f()
    helpers = [n for n in f.__globals__ if n.startswith("__anycapture_")]
    hub = recorder.instrumented(f)
    assert [n for n in helpers if n == hub.hook_global] == [hub.hook_global]
    assert sum(1 for n in helpers if n == hub.hook_global) == 1


def test_reentering_capture_reuses_the_instrumented_code(
    gl: GetLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    real = recorder.instrument_code
    monkeypatch.setattr(recorder, "instrument_code", lambda *a: calls.append(a) or real(*a))

    def f(x: int) -> int:
        attn = x + 1
        return attn

    for i in range(20):
        with capture(f, "attn") as cap:
            f(i)
        assert list(cap.cache.values()) == [[i + 1]]
    assert len(calls) == 1
    gl("attn")(f)
    gl.activate()  # get_local alone: the single-name fast-path variant, made once
    with capture(f, "attn"):  # both: the shared variant already made
        f(0)
    gl.deactivate()
    gl.activate()
    assert len(calls) == 2


def test_max_calls_container_and_numpy_values(gl: GetLocal) -> None:
    @gl("a", max_calls=2)
    def f() -> int:
        a = np.zeros(2)
        return 0

    gl.activate()
    for _ in range(3):
        f()
    (stored,) = gl.cache.values()
    assert isinstance(stored, deque) and len(stored) == 2


def test_containers_are_converted_item_by_item(gl: GetLocal) -> None:
    """AnyCapture's default collate converts inside tuples, lists and dicts."""

    @gl("out")
    def f() -> int:
        out = (np.ones(2), [np.ones(3)], {"w": np.ones(1)})
        return 0

    gl.activate(float16=True)
    f()
    ((first, [second], third),) = next(iter(gl.cache.values()))
    assert first.dtype == second.dtype == third["w"].dtype == np.float16


def test_bounded_values_slice_like_the_seeds_lists(gl: GetLocal) -> None:
    @gl("v")
    def f(i: int) -> int:
        v = i
        return v

    gl.activate(max_size=3)  # AnyCapture notebooks slice what they get
    for i in range(5):
        f(i)
    values = gl.cache[f.__qualname__]
    assert values[:2] == [2, 3] and values[-1] == 4 and list(values) == [2, 3, 4]
