"""``capture()``: instrumenting functions we did not write, and restoring them exactly."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from anycapture import capture
from anycapture.decorator import GetLocal

LIB_SRC = """
    class Attention:
        def __init__(self, scale):
            self.scale = scale

        def forward(self, x, *, bias=0):
            attn = x * self.scale + bias
            if attn > 100:
                return -1
            return attn + 1

    def helper(a, b=2):
        out = a + b
        return out
"""


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    (tmp_path / "fakelib.py").write_text(textwrap.dedent(LIB_SRC))
    monkeypatch.syspath_prepend(str(tmp_path))
    import fakelib

    yield fakelib
    sys.modules.pop("fakelib", None)


def _fingerprint(fn):  # type: ignore[no-untyped-def]
    return (fn, fn.__code__, fn.__defaults__, fn.__kwdefaults__, fn.__globals__.get("helper"))


def test_capture_by_path_names_instances(lib) -> None:  # type: ignore[no-untyped-def]
    layers = {"blocks.0.attn": lib.Attention(2), "blocks.1.attn": lib.Attention(3)}
    names = {id(m): n for n, m in layers.items()}
    with capture("fakelib:Attention.forward", "attn") as cap:
        for module in layers.values():
            module.forward(5)
        layers["blocks.0.attn"].forward(1, bias=1)
    assert cap.cache == {"Attention.forward.attn": [10, 15, 3]}
    assert cap.by_instance(names) == {"blocks.0.attn": [10, 3], "blocks.1.attn": [15]}
    assert [r.instance for r in cap.records] == [
        layers["blocks.0.attn"],
        layers["blocks.1.attn"],
        layers["blocks.0.attn"],
    ]
    # after exit the function is untouched and records nothing
    assert layers["blocks.0.attn"].forward(5) == 11
    assert cap.cache == {"Attention.forward.attn": [10, 15, 3]}


@pytest.mark.parametrize("exit_by", ["normal", "exception", "keyboard-interrupt"])
def test_restores_exactly_on_every_exit(lib, exit_by: str) -> None:  # type: ignore[no-untyped-def]
    before = _fingerprint(lib.Attention.forward), _fingerprint(lib.helper)
    raised: type[BaseException] | None = {
        "normal": None,
        "exception": RuntimeError,
        "keyboard-interrupt": KeyboardInterrupt,
    }[exit_by]
    try:
        with (
            capture(lib.helper, "out") as cap,
            capture("fakelib:Attention.forward", "attn") as cap2,
        ):
            assert lib.helper.__code__ is not before[1][1]
            lib.helper(1)
            lib.Attention(1).forward(1)
            if raised is not None:
                raise raised
    except (RuntimeError, KeyboardInterrupt) as exc:
        assert type(exc) is raised
    assert (_fingerprint(lib.Attention.forward), _fingerprint(lib.helper)) == before
    assert cap.cache == {"helper.out": [3]} and cap2.cache == {"Attention.forward.attn": [1]}


def test_several_targets_and_clear(lib) -> None:  # type: ignore[no-untyped-def]
    def other(self, x):  # type: ignore[no-untyped-def]
        attn = -x
        return attn

    with capture([other, "fakelib:Attention.forward"], "attn") as cap:
        lib.Attention(2).forward(1)
        other(None, 4)
    assert cap.cache == {"Attention.forward.attn": [2], other.__qualname__ + ".attn": [-4]}
    cap.clear()
    assert cap.cache == {} and cap.records == []


def test_capture_composes_with_get_local(gl: GetLocal, lib) -> None:  # type: ignore[no-untyped-def]
    """get_local and capture() of one function each get every value; neither refuses."""
    gl("out")(lib.helper)
    gl.activate()
    lib.helper(1)
    with capture(lib.helper, "out") as cap:
        lib.helper(0)
    lib.helper(5)
    assert cap.cache == {"helper.out": [2]}
    assert gl.cache["helper.out"] == [3, 2, 7]
    gl.deactivate()
    with capture(lib.helper, "out") as cap:
        lib.helper(0)
    assert cap.cache == {"helper.out": [2]}
    assert gl.cache["helper.out"] == [3, 2, 7]


def test_failed_start_rolls_back(lib, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def first(a):  # type: ignore[no-untyped-def]
        out = a
        return out

    import anycapture.recorder as recorder

    original = first.__code__
    instrument = recorder.instrument_code

    def failing(code, *args, **kwargs):  # type: ignore[no-untyped-def]
        if code.co_name == "helper":
            raise RuntimeError("cannot instrument helper")
        return instrument(code, *args, **kwargs)

    monkeypatch.setattr(recorder, "instrument_code", failing)
    with pytest.raises(RuntimeError, match="cannot instrument helper"):
        with capture([first, lib.helper], "out"):
            pass
    assert first.__code__ is original


def test_code_replaced_by_someone_else_is_adopted_not_an_error(gl, lib) -> None:  # type: ignore[no-untyped-def]
    """IPython's autoreload swaps ``f.__code__``: activate() and deactivate() go on
    working (they raised for good), recording from the new code, with one warning."""
    from anycapture.recorder import CaptureWarning

    gl("out")(lib.helper)
    gl.activate()
    lib.helper(1)

    def reloaded(a, b=2):  # type: ignore[no-untyped-def]
        out = a * 10
        return out

    swapped = reloaded.__code__
    lib.helper.__code__ = swapped  # as autoreload does
    with pytest.warns(CaptureWarning, match=r"helper.__code__ was replaced \(autoreload\?\)"):
        gl.deactivate()
    assert lib.helper.__code__ is swapped
    gl.activate()
    lib.helper(5)
    gl.deactivate()
    assert gl.cache["helper.out"] == [3, 50]


def test_bad_paths_are_clear(lib) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"must look like 'package.module:Class.method'"):
        capture("fakelib.Attention.forward", "attn")
    with pytest.raises(ValueError, match="cannot import nosuchlib"):
        capture("nosuchlib:f", "attn")
    with pytest.raises(ValueError, match="Attention has no attribute 'fwd'"):
        capture("fakelib:Attention.fwd", "attn")
    with pytest.raises(ValueError, match="no local variable 'atn'"):
        capture("fakelib:Attention.forward", "atn")
