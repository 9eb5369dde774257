"""Recording final values and swapping a function's code in and out.

``InstrumentedFunction`` owns one function: it keeps the original code object,
builds the instrumented one once, and swaps ``__code__`` between them, so the
function object (and every reference to it) stays the same and an inactive
function runs its original code at no cost.
"""

from __future__ import annotations

import itertools
import threading
import types
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .instrument import (
    UNASSIGNED,
    FastPathGlobals,
    _Sentinel,
    capturable_names,
    instrument_code,
    resolve_function,
)
from .storage import StoragePolicy

__all__ = ["CallRecord", "CaptureWarning", "FastPath", "InstrumentedFunction", "make_recorder"]

_counter = itertools.count()
_owners: weakref.WeakKeyDictionary[types.FunctionType, InstrumentedFunction] = (
    weakref.WeakKeyDictionary()
)
_owners_lock = threading.Lock()


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


class FastPath:
    """Turns the single-name fast path of one instrumented function on and off.

    On, values of one type skip the recorder and are appended by C code; the
    recorder turns it on for a type it stores unchanged, and it is turned off
    whenever the target list changes or the cache is cleared (so the next call
    goes through the recorder, which puts the key back into the cache).
    """

    def __init__(self, namespace: dict[str, Any], recorder_global: str) -> None:
        self._namespace = namespace
        self._names = FastPathGlobals(recorder_global)

    def setup(self) -> None:
        self.disable()
        self._namespace[self._names.type_of] = type
        # Never reset an existing append: a thread past the type check still calls it.
        self._namespace.setdefault(self._names.append, None)

    def enable(self, cls: type, append: Callable[[Any], None]) -> None:
        # The list first: code that sees the type then finds the list it belongs with.
        self._namespace[self._names.append] = append
        self._namespace[self._names.expected_type] = cls

    def disable(self) -> None:
        self._namespace[self._names.expected_type] = _NoValueHasThisType


class InstrumentedFunction:
    """A function whose ``__code__`` can be switched to an instrumented copy.

    With ``fast_path`` (one name only), :attr:`fast_path` lets the recorder send
    values of a type it stores unchanged straight to their list.
    """

    def __init__(self, target: Any, names: Sequence[str], fast_path: bool = False) -> None:
        self.function = resolve_function(target)
        self.names = tuple(names)
        if not self.names:
            raise ValueError("name at least one local variable to capture")
        self.original_code = self.function.__code__
        available = capturable_names(self.original_code)
        unknown = [n for n in self.names if n not in available]
        if unknown:
            raise ValueError(
                f"{self.qualname} has no local variable {', '.join(map(repr, unknown))}; "
                f"its locals are: {', '.join(available) or '(none)'}"
            )
        self.global_name = f"__anycapture_recorder_{next(_counter)}__"
        self._instrumented_code: types.CodeType | None = None
        self.fast_path: FastPath | None = None
        if fast_path:
            if len(self.names) != 1:
                raise ValueError("the fast path records exactly one name")
            self.fast_path = FastPath(self.function.__globals__, self.global_name)

    @property
    def qualname(self) -> str:
        return self.function.__qualname__

    @property
    def module(self) -> str:
        return self.function.__module__ or "?"

    @property
    def is_installed(self) -> bool:
        return self.function.__code__ is self._instrumented_code

    def install(self, recorder: Callable[..., None]) -> None:
        """Point the function at instrumented code that calls ``recorder``."""
        with _owners_lock:
            owner = _owners.get(self.function)
            if owner is not None and owner is not self:
                raise RuntimeError(
                    f"{self.qualname} is already being captured by another get_local or "
                    "capture(); deactivate that one first"
                )
            if self.function.__code__ is not self.original_code and not self.is_installed:
                raise RuntimeError(
                    f"{self.qualname}.__code__ was replaced by someone else since it was "
                    "registered; refusing to overwrite it"
                )
            if self._instrumented_code is None:
                self._instrumented_code = instrument_code(
                    self.original_code, self.names, self.global_name, self.fast_path is not None
                )
            if self.fast_path is not None:
                self.fast_path.setup()
            self.function.__globals__[self.global_name] = recorder
            self.function.__code__ = self._instrumented_code
            _owners[self.function] = self

    def uninstall(self) -> None:
        """Restore the original code object (the recorder global stays, unused)."""
        with _owners_lock:
            if self.is_installed:
                self.function.__code__ = self.original_code
            elif self.function.__code__ is not self.original_code:
                warnings.warn(
                    f"{self.qualname}.__code__ was replaced by someone else while captured; "
                    "leaving their code in place",
                    RuntimeWarning,
                    stacklevel=3,
                )
            if _owners.get(self.function) is self:
                del _owners[self.function]


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
            stacklevel=3,
        )


def make_recorder(
    keys: Sequence[str],
    cache: dict[str, list[Any]],
    policy: StoragePolicy,
    report_missing: Callable[[str, _Sentinel], None],
    records: list[CallRecord] | deque[CallRecord] | None = None,
    function_name: str = "",
    with_instance: bool = False,
    fast_path: FastPath | None = None,
) -> tuple[Callable[..., None], list[Any]]:
    """Build the function the instrumented code calls with the final values.

    Returns the recorder and the per-key lists it appends to (``deque(maxlen=...)``
    with ``max_calls``); a list is (re)put into ``cache`` whenever it is empty, so
    ``cache.clear()`` plus emptying the lists resets everything without rebuilding
    the recorder.

    With ``records``, one :class:`CallRecord` per call is appended too; with
    ``with_instance`` the last value passed is the object that ran the call
    (``self``), not a captured variable.  With ``fast_path`` (one key, no records)
    the recorder turns it on for each type it stores unchanged.
    """
    convert = policy.converter()
    # Bounded: a deque drops the oldest in O(1), atomically (no lock, nothing lost).
    lists: list[Any] = [
        [] if policy.max_calls is None else deque(maxlen=policy.max_calls) for _ in keys
    ]

    if len(keys) == 1 and records is None:
        # The common seed case, kept lean: it runs on every call.
        (key,) = keys
        (lst,) = lists
        append = lst.append

        unchanged: set[type] = set()  # types stored as they are: no conversion call

        def record_one(value: Any) -> None:
            cls = type(value)
            if cls is _Sentinel:
                report_missing(key, value)
                return
            if not lst:
                cache[key] = lst
            if cls not in unchanged and policy.stores_unchanged(cls):
                unchanged.add(cls)
            if cls in unchanged:
                append(value)
                if fast_path is not None:
                    fast_path.enable(cls, append)  # later values of cls skip this call
            else:
                append(convert(value))

        return record_one, lists

    pairs = list(zip(keys, lists, strict=True))

    def record(*values: Any) -> None:
        instance = None
        if with_instance:
            instance = values[-1]
            values = values[:-1]
        call_values: dict[str, Any] = {}
        for (key, lst), value in zip(pairs, values, strict=True):
            if type(value) is _Sentinel:
                report_missing(key, value)
                continue
            stored = convert(value)
            call_values[key] = stored
            if not lst:
                cache[key] = lst
            lst.append(stored)
        if records is not None:
            records.append(CallRecord(function_name, instance, call_values))

    return record, lists
