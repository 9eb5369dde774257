"""``capture``: record locals of functions you did not write, for one ``with`` block."""

from __future__ import annotations

import importlib
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from .instrument import _Sentinel, resolve_function
from .recorder import CallRecord, InstrumentedFunction, _MissingReporter, make_recorder
from .storage import StoragePolicy

__all__ = ["CallRecord", "Capture", "capture", "resolve_target"]


def resolve_target(target: Any) -> Any:
    """Turn ``"package.module:Class.method"`` into the object it names."""
    if not isinstance(target, str):
        return target
    module_name, sep, attribute_path = target.partition(":")
    if not sep or not module_name or not attribute_path:
        raise ValueError(f"capture target {target!r} must look like 'package.module:Class.method'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"capture target {target!r}: cannot import {module_name}: {exc}") from exc
    for part in attribute_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(
                f"capture target {target!r}: {getattr(obj, '__name__', obj)!s} has no "
                f"attribute {part!r}"
            ) from None
    return obj


class Capture:
    """Instruments target functions while active; restores them exactly on stop.

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
        self.policy = policy or StoragePolicy()
        self.cache: dict[str, list[Any]] = {}
        self.records: list[CallRecord] | deque[CallRecord] = (
            [] if self.policy.max_calls is None else deque(maxlen=self.policy.max_calls)
        )
        self._missing = _MissingReporter()
        self._lock = threading.Lock()
        self._functions: list[tuple[InstrumentedFunction, str, bool]] = []
        seen: dict[str, str] = {}
        for target in targets:
            function = resolve_function(resolve_target(target))
            code = function.__code__
            with_instance = code.co_argcount >= 1 and code.co_varnames[0] == "self"
            loaded = self.names + (("self",) if with_instance else ())
            instrumented = InstrumentedFunction(function, loaded)
            prefix = function.__qualname__
            if seen.setdefault(prefix, instrumented.module) != instrumented.module:
                prefix = f"{instrumented.module}:{prefix}"
            self._functions.append((instrumented, prefix, with_instance))
        self._active = False

    @property
    def functions(self) -> list[Any]:
        """The instrumented functions (after unwrapping decorators)."""
        return [f.function for f, _, _ in self._functions]

    def start(self) -> Capture:
        with self._lock:
            if self._active:
                return self
            installed: list[InstrumentedFunction] = []
            try:
                for instrumented, prefix, with_instance in self._functions:
                    keys = [f"{prefix}.{name}" for name in self.names]
                    recorder, _ = make_recorder(
                        keys,
                        self.cache,
                        self.policy,
                        self._missing,
                        records=self.records,
                        function_name=prefix,
                        with_instance=with_instance,
                    )
                    instrumented.install(recorder)
                    installed.append(instrumented)
            except BaseException:
                for instrumented in reversed(installed):
                    instrumented.uninstall()
                raise
            self._active = True
        return self

    def stop(self) -> None:
        with self._lock:
            for instrumented, _, _ in reversed(self._functions):
                instrumented.uninstall()
            self._active = False

    def clear(self) -> None:
        """Forget what was recorded so far (keeps capturing if active)."""
        for values in self.cache.values():
            values.clear()
        self.cache.clear()
        self.records.clear()

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
                instance = record.instance
                name = "?" if type(instance) is _Sentinel else names.get(id(instance), "?")
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
