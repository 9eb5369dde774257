"""``capture``: record locals of functions you did not write, for one ``with`` block."""

from __future__ import annotations

import importlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from .cache import RecentValues
from .errors import UsageError
from .instrument import _Sentinel
from .recorder import (
    CallRecord,
    InstrumentedFunction,
    _MissingReporter,
    instrumented,
    warn_unstorable,
)
from .storage import StoragePolicy

__all__ = ["CallRecord", "Capture", "capture", "resolve_target"]


def resolve_target(target: Any) -> Any:
    """Turn ``"package.module:Class.method"`` into the object it names."""
    if not isinstance(target, str):
        return target
    module_name, sep, attribute_path = target.partition(":")
    if not sep or not module_name or not attribute_path:
        raise UsageError(f"capture target {target!r} must look like 'package.module:Class.method'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"capture target {target!r}: cannot import {module_name}: {exc}") from exc
    for part in attribute_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(
                f"capture target {target!r}: {getattr(obj, '__name__', obj)!s} has no "
                f"attribute {part!r}"
            ) from None
    return obj


class _FunctionListener:
    """What one :class:`Capture` records of one function (see ``recorder.Listener``)."""

    wants_fast_path = False

    def __init__(self, capture: Capture, hub: InstrumentedFunction, prefix: str) -> None:
        self.names = capture.names
        self.with_instance = hub.self_name is not None
        self.hub = hub
        self.prefix = prefix
        self.keys = tuple(f"{prefix}.{name}" for name in capture.names)
        # A plain function, not a bound method: CPython 3.11 calls it inline from the
        # instrumented code, so recording costs one frame near the recursion limit.
        self.record = _recorder(capture, self.keys, prefix, self.with_instance)

    def bind_fast_path(self, fast_path: Any) -> None:
        """Capture keeps one record per call, so it never takes the fast path."""


def _recorder(
    capture: Capture, keys: tuple[str, ...], prefix: str, with_instance: bool
) -> Callable[..., None]:
    """The function one captured function's calls report their final values to.

    No comparisons in the body: on CPython 3.11 a rich comparison counts against
    the recursion limit, and this runs at the captured function's depth."""
    unchanged, cache, policy = capture.unchanged, capture.cache, capture.policy

    def record(values: tuple[Any, ...]) -> None:
        nonlocal cache
        instance = values[-1] if with_instance else None  # the call's self, last
        if cache is not capture.cache:  # cleared: a new dict
            cache = capture.cache
        stored: dict[str, Any] = {}
        # Indexing, not zip(): on 3.11 calling a type (zip, range) counts against the
        # recursion limit; extra values (self, last) are not read.
        position = 0
        for key in keys:
            value = values[position]
            position += 1
            cls = type(value)
            if cls is _Sentinel:
                capture.report_missing(key, value)
                continue
            if cls not in unchanged:  # stored as it is: no conversion call
                if policy.stores_unchanged(cls):
                    unchanged.add(cls)
                else:
                    try:
                        value = capture.convert(value)
                    except Exception as exc:  # never the user's call that fails
                        warn_unstorable(capture._unstorable, key, value, exc)
                        continue
            stored[key] = value
            if key in cache:
                cache[key] += (value,)  # no method call (see below)
            else:  # inline, not new_list(): no second frame near the limit
                maxlen = policy.max_calls
                cache[key] = [value] if maxlen is None else RecentValues((value,), maxlen)
        # ``+=``, not ``.append()``: on 3.11 a C method call that is not specialized
        # (it deoptimises once another capture's types went through this code) counts
        # against the recursion limit, and this runs at the captured function's depth.
        calls = capture._calls  # a local: ``+=`` must never store over a clear()
        calls += ((prefix, instance, stored),)  # a tuple: no __init__ frame

    return record


class Capture:
    """Instruments target functions while active; restores them exactly on stop.

    Composes with ``get_local`` and other captures of the same functions: each gets
    its own values.  After :meth:`stop` the functions hold no reference to this
    object, so dropping it frees everything it recorded.

    Attributes:
        cache: ``{'Qualname.var': [value, ...]}``, one value per call, as
            ``get_local.cache``.
        records: one :class:`CallRecord` per call, in the order calls returned,
            with ``instance`` set to the call's ``self`` (for methods) so a
            caller can tell which module ran it.
    """

    def __init__(
        self,
        targets: Any | Sequence[Any],
        names: Sequence[str],
        policy: StoragePolicy | None = None,
    ) -> None:
        if isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable):
            targets = [targets]
        self.names = tuple(names)
        if not self.names:
            raise UsageError("name at least one local variable to capture")
        self.policy = policy or StoragePolicy()
        self.convert = self.policy.converter()
        self._unstorable: set[str] = set()  # keys warned of a value that cannot be stored
        # types the policy stores as they are (scalars known up front: no call at all)
        self.unchanged: set[type] = {int, float, bool, complex, str, bytes, type(None)}
        self.cache: dict[str, list[Any]] = {}
        self._calls: list[tuple[str, Any, dict[str, Any]]] | deque[Any] = self.new_list()
        self.report_missing = _MissingReporter()
        self._lock = threading.Lock()
        self._listeners: list[_FunctionListener] = []
        seen: dict[str, str] = {}
        for target in targets:
            hub = instrumented(resolve_target(target))
            hub.check_names(self.names)
            prefix = hub.qualname
            if seen.setdefault(prefix, hub.module) != hub.module:
                prefix = f"{hub.module}:{prefix}"
            self._listeners.append(_FunctionListener(self, hub, prefix))
        self._active = False

    def new_list(self) -> Any:
        """A list, or the newest ``max_calls`` values when the policy bounds it."""
        return [] if self.policy.max_calls is None else RecentValues(maxlen=self.policy.max_calls)

    @property
    def records(self) -> list[CallRecord]:
        """One :class:`CallRecord` per call so far, in the order the calls returned."""
        return [CallRecord(*call) for call in list(self._calls)]

    @property
    def functions(self) -> list[Any]:
        """The instrumented functions (after unwrapping decorators)."""
        return [listener.hub.function for listener in self._listeners if listener.hub.function]

    def start(self) -> Capture:
        with self._lock:
            if self._active:
                return self
            attached: list[_FunctionListener] = []
            try:
                for listener in self._listeners:
                    listener.hub.attach(listener)
                    attached.append(listener)
            except BaseException:
                for listener in reversed(attached):
                    listener.hub.detach(listener)
                raise
            self._active = True
        return self

    def stop(self) -> None:
        with self._lock:
            for listener in reversed(self._listeners):
                listener.hub.detach(listener)
            self._active = False

    def clear(self) -> None:
        """Forget what was recorded so far (keeps capturing if active); lists handed
        out before keep their values."""
        self.cache = {}
        self._calls = self.new_list()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def by_instance(self, names: Mapping[int, str], var: str | None = None) -> dict[str, list[Any]]:
        """Group one variable's values by the name of the object that produced them.

        ``names`` maps ``id(instance)`` to a name, e.g.
        ``{id(m): n for n, m in model.named_modules()}``; the result is ordered
        as the calls returned: ``{'blocks.0.attn': [attn, ...], ...}``.
        """
        var = var or self.names[0]
        grouped: dict[str, list[Any]] = {}
        for record in self.records:
            for key, value in record.values.items():
                if key.rsplit(".", 1)[1] != var:
                    continue
                name = names.get(id(record.instance), "?")
                grouped.setdefault(name, []).append(value)
        return grouped


def capture(
    target: Any | Sequence[Any],
    *names: str,
    keep_tensors: bool = False,
    keep_grad: bool = False,
    float16: bool = False,
    max_calls: int | None = None,
) -> Capture:
    """Record the final values of ``names`` in ``target`` while the block runs.

    ``target`` is a function or method object, a path such as
    ``"timm.layers.attention:Attention.forward"``, or a list of them.  Use it as a
    context manager; the targets are restored on exit, exceptions and Ctrl-C
    included::

        with capture("timm.layers.attention:Attention.forward", "attn") as cap:
            model(x)
        cap.cache["Attention.forward.attn"]   # one array per block, in order
    """
    policy = StoragePolicy(keep_tensors, keep_grad, float16, max_calls)
    return Capture(target, names, policy)
