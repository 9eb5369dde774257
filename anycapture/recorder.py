"""One instrumented function, shared by everyone who captures it.

:class:`InstrumentedFunction` owns one function object (there is exactly one per
function, see :func:`instrumented`): it keeps the original code, builds each
instrumented variant once (per set of names) and swaps ``__code__`` between them,
so the function object and every reference to it stay the same and a function
nobody captures runs its original code at no cost.

Who wants the values attaches a *listener* (``get_local`` entries, ``capture()``
blocks, the render's sources): the function then records the union of the names
they ask for and hands each listener its own.  Listeners compose, so ``get_local``
on a function and a ``capture()`` of it never refuse each other.  The code reaches
its listeners through one module global per function, a :class:`Hook` whose
attributes are re-pointed as listeners come and go; once the last one detaches the
hook holds nothing.
"""

from __future__ import annotations

import itertools
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .instrument import UNASSIGNED, _Sentinel, capturable_names, instrument_code, resolve_function

__all__ = [
    "CallRecord",
    "CaptureWarning",
    "FastPath",
    "Hook",
    "InstrumentedFunction",
    "Listener",
    "instrumented",
]

_counter = itertools.count()
_hubs: weakref.WeakKeyDictionary[types.FunctionType, InstrumentedFunction] = (
    weakref.WeakKeyDictionary()
)
_hubs_lock = threading.RLock()


class CaptureWarning(UserWarning):
    """A captured local had no value to record (never assigned, or deleted)."""


@dataclass
class CallRecord:
    """One call of a captured function: which object ran it and the final values."""

    function: str
    instance: Any
    values: dict[str, Any] = field(default_factory=dict)


class _NoValueHasThisType:
    """The fast path's expected type while it is off: ``type(v) is`` never matches."""


def _ignore(_value: Any) -> None:
    """What a hook calls once nobody listens (a call already past the swap)."""


class Hook:
    """The one global an instrumented function reads (see ``instrument.HookAttrs``)."""

    __slots__ = ("append", "expected_type", "record", "type_of")

    def __init__(self) -> None:
        self.type_of = type
        self.expected_type: type = _NoValueHasThisType
        self.append: Callable[[Any], Any] = _ignore
        self.record: Callable[..., None] = _ignore

    def release(self) -> None:
        """Hold nothing: the type check first, so no call reaches a stale append."""
        self.expected_type = _NoValueHasThisType
        self.record = _ignore
        self.append = _ignore


class FastPath:
    """Lets one single-name listener send values of one type straight to a list.

    The listener turns it on for a type it stores unchanged; it is off whenever the
    target list may change (clear, re-activation, another listener attaching), so
    the next call goes through the listener again.
    """

    def __init__(self, hook: Hook) -> None:
        self._hook = hook
        self.live = True

    def enable(self, cls: type, append: Callable[[Any], None]) -> None:
        if not self.live:
            return
        # The list first: code that sees the type then finds the list it belongs with.
        self._hook.append = append
        self._hook.expected_type = cls

    def disable(self) -> None:
        # Never reset the append: a thread past the type check still calls it.
        self._hook.expected_type = _NoValueHasThisType


class Listener(Protocol):
    """What :meth:`InstrumentedFunction.attach` takes.

    ``record(values)`` is called once per returning call with the final values of
    ``names`` (in that order; :data:`UNASSIGNED` for an unbound one) followed, with
    ``with_instance``, by the call's ``self``.  One positional parameter, so CPython
    3.11 calls a plain-function ``record`` inline from the instrumented code (one
    frame near the recursion limit).  A listener that sets
    ``wants_fast_path`` gets a :class:`FastPath` through ``bind_fast_path`` while it
    is the function's only listener, else ``None``.
    """

    names: tuple[str, ...]
    with_instance: bool
    wants_fast_path: bool

    def record(self, values: tuple[Any, ...]) -> None: ...

    def bind_fast_path(self, fast_path: FastPath | None) -> None: ...


def instrumented(target: Any) -> InstrumentedFunction:
    """The one :class:`InstrumentedFunction` of the function ``target`` resolves to."""
    function = resolve_function(target)
    with _hubs_lock:
        hub = _hubs.get(function)
        if hub is None:
            hub = _hubs[function] = InstrumentedFunction(function)
        return hub


class InstrumentedFunction:
    """A function whose ``__code__`` is switched to record what its listeners want."""

    def __init__(self, function: types.FunctionType) -> None:
        self._function = weakref.ref(function)  # closures made in a loop may be freed
        self.qualname = function.__qualname__
        self.module = function.__module__ or "?"
        self.original_code = function.__code__
        self.available = capturable_names(self.original_code)
        varnames = self.original_code.co_varnames
        self.self_name = (
            varnames[0] if self.original_code.co_argcount >= 1 and varnames[0] == "self" else None
        )
        self.hook_global = f"__anycapture_hook_{next(_counter)}__"
        self.hook = Hook()
        self._codes: dict[tuple[tuple[str, ...], bool], types.CodeType] = {}
        self._listeners: list[Listener] = []

    @property
    def function(self) -> types.FunctionType | None:
        """The function, or ``None`` once it has been freed (a class that is gone)."""
        return self._function()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(self._listeners)

    def check_names(self, names: Sequence[str]) -> None:
        """Raise ``ValueError`` naming the locals if one of ``names`` is not one."""
        unknown = [n for n in names if n not in self.available]
        if unknown:
            raise ValueError(
                f"{self.qualname} has no local variable {', '.join(map(repr, unknown))}; "
                f"its locals are: {', '.join(self.available) or '(none)'}"
            )

    def attach(self, listener: Listener) -> None:
        """Start handing ``listener`` its values (from the next call that returns)."""
        self.check_names(listener.names)
        with _hubs_lock:
            if any(existing is listener for existing in self._listeners):
                self.refresh()
                return
            self._listeners.append(listener)
            try:
                self.refresh()
            except BaseException:
                self._listeners.remove(listener)
                raise

    def detach(self, listener: Listener) -> None:
        """Stop handing ``listener`` values; the original code runs once nobody listens."""
        with _hubs_lock:
            kept = [existing for existing in self._listeners if existing is not listener]
            if len(kept) == len(self._listeners):
                return
            self._listeners = kept
            listener.bind_fast_path(None)
            self.refresh()

    def refresh(self) -> None:
        """Install the code and hook the current listeners need (after any change)."""
        with _hubs_lock:
            function = self._function()
            if function is None:  # freed (a closure): nothing left to instrument
                self._listeners.clear()
                self.hook.release()
                return
            current = function.__code__
            if current is not self.original_code and current not in self._codes.values():
                self._adopt(current)
            names = self._loaded_names()
            if not self._listeners or not set(names) <= set(self.available):
                function.__code__ = self.original_code
                self.hook.release()
                return
            fast = len(self._listeners) == 1 and self._listeners[0].wants_fast_path
            fast = fast and len(names) == 1
            code = self._code_for(names, fast)
            self.hook.expected_type = _NoValueHasThisType  # off until the listener says
            self.hook.record = self._dispatcher(names)
            function.__globals__[self.hook_global] = self.hook
            function.__code__ = code
            for i, listener in enumerate(self._listeners):
                listener.bind_fast_path(FastPath(self.hook) if fast and i == 0 else None)

    def _adopt(self, code: types.CodeType) -> None:
        """Someone else replaced the function's code (IPython's autoreload, a
        debugger): that code is the function now, so it becomes the one instrumented
        (or left alone, where it lacks a captured local); never an error, which would
        leave activate() and deactivate() raising for good."""
        self.original_code = code
        self.available = capturable_names(code)
        self._codes.clear()
        lost = [n for n in self._loaded_names() if n not in self.available]
        warnings.warn(
            f"anycapture: {self.qualname}.__code__ was replaced (autoreload?): "
            + (
                f"the new code has no local {', '.join(map(repr, lost))}, nothing is recorded"
                if lost
                else "capturing in the new code"
            ),
            CaptureWarning,
            stacklevel=5,
        )

    def _loaded_names(self) -> tuple[str, ...]:
        names = dict.fromkeys(n for listener in self._listeners for n in listener.names)
        if self.self_name and any(listener.with_instance for listener in self._listeners):
            names[self.self_name] = None
        return tuple(names)

    def _code_for(self, names: tuple[str, ...], fast: bool) -> types.CodeType:
        code = self._codes.get((names, fast))
        if code is None:
            code = instrument_code(self.original_code, names, self.hook_global, fast)
            self._codes[(names, fast)] = code
        return code

    def _dispatcher(self, names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], None]:
        """The hook's ``record``: each listener gets its names (and ``self``)."""
        has_self = bool(self.self_name) and names[-1] == self.self_name
        plan = []
        for listener in self._listeners:
            wanted = tuple(listener.names)
            if listener.with_instance and has_self:
                wanted += (self.self_name,)
            if len(self._listeners) == 1 and wanted == names:
                return listener.record  # called directly: no frame in between
            plan.append((listener.record, tuple(names.index(n) for n in wanted)))

        def dispatch(values: tuple[Any, ...]) -> None:
            for record, indices in plan:
                record(tuple([values[i] for i in indices]))

        return dispatch

    def __repr__(self) -> str:
        return f"<InstrumentedFunction {self.qualname}, {len(self._listeners)} listeners>"


def warn_unstorable(warned: set[str], key: str, value: Any, exc: Exception) -> None:
    """A value the storage policy cannot convert (a sparse, meta or quantised tensor,
    a dict that holds itself): skipped, with one warning per key in ``warned``."""
    if key in warned:
        return
    warned.add(key)
    warnings.warn(
        f"anycapture: {key}: a {type(value).__name__} that cannot be stored was skipped "
        f"({type(exc).__name__}: {str(exc)[:200]}); store it as it is with "
        "keep_tensors=True, or convert it with set_collate_fn",
        CaptureWarning,
        stacklevel=4,
    )


class _MissingReporter:
    """Warns once per (function, variable) that a captured local had no value."""

    def __init__(self) -> None:
        self._reported: set[str] = set()

    def __call__(self, key: str, value: _Sentinel) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        hint = ""
        if value is UNASSIGNED and "attn" in key.rsplit(".", 1)[-1]:
            hint = (
                " (for timm attention, fused attention skips it: set module.fused_attn = False "
                "or TIMM_FUSED_ATTN=0)"
            )
        warnings.warn(
            f"anycapture: {key} was not assigned (or was deleted) on the path a call took; "
            f"nothing was recorded for "
            f"that call{hint}",
            CaptureWarning,
            stacklevel=4,
        )
