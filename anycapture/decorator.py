"""``get_local``: the seed-compatible decorator that records final values of locals."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .instrument import resolve_function
from .recorder import InstrumentedFunction, _MissingReporter, make_recorder
from .storage import StoragePolicy

__all__ = ["GetLocal", "get_local"]

F = TypeVar("F")

_UNSET: Any = object()


@dataclass
class _Entry:
    target: InstrumentedFunction
    key_prefix: str
    overrides: dict[str, Any]
    lists: list[Any]


class GetLocal:
    """Decorator factory plus the shared cache, as in Visualizer and AnyCapture.

    >>> @get_local('attn')            # doctest: +SKIP
    ... def forward(self, x): ...
    >>> get_local.activate()          # before or after the import, either works
    >>> get_local.cache               # {'Attention.forward.attn': [array, ...]}
    """

    def __init__(self) -> None:
        self.cache: dict[str, list[Any]] = {}
        self._entries: list[_Entry] = []
        self._claimed: dict[str, str] = {}  # key prefix (qualname) -> module that owns it
        self._policy = StoragePolicy()
        self._active = False
        self._missing = _MissingReporter()
        self._lock = threading.RLock()

    # -- decorating -----------------------------------------------------------
    def __call__(
        self,
        *names: str,
        keep_tensors: bool = _UNSET,
        keep_grad: bool = _UNSET,
        float16: bool = _UNSET,
        max_calls: int | None = _UNSET,
    ) -> Callable[[F], F]:
        """Return a decorator recording the final values of ``names`` on every call.

        Keyword options override, for this function, those given to :meth:`activate`.
        """
        if len(names) == 1 and callable(names[0]):
            raise TypeError("get_local needs the names to capture: write @get_local('attn')")
        bad = [n for n in names if not isinstance(n, str) or not n.isidentifier()]
        if bad or not names:
            raise TypeError(f"get_local takes local variable names as strings, got {names!r}")
        overrides = {
            k: v
            for k, v in dict(
                keep_tensors=keep_tensors, keep_grad=keep_grad, float16=float16, max_calls=max_calls
            ).items()
            if v is not _UNSET
        }
        StoragePolicy(**overrides)  # validate now, at decoration, not at first call

        def decorate(obj: F) -> F:
            target = InstrumentedFunction(obj, names, fast_path=len(names) == 1)
            with self._lock:
                entry = _Entry(target, self._key_prefix(target), overrides, [])
                self._entries.append(entry)
                if self._active:
                    self._install(entry)
            return obj

        return decorate

    def _key_prefix(self, target: InstrumentedFunction) -> str:
        owner = self._claimed.setdefault(target.qualname, target.module)
        if owner == target.module:
            return target.qualname
        prefix = f"{target.module}:{target.qualname}"
        warnings.warn(
            f"anycapture: {target.qualname} is defined in both {owner} and {target.module}; "
            f"values from the second are stored under '{prefix}.<name>'",
            stacklevel=3,
        )
        return prefix

    def _install(self, entry: _Entry) -> None:
        policy = replace(self._policy, **entry.overrides)
        keys = [f"{entry.key_prefix}.{name}" for name in entry.target.names]
        recorder, entry.lists = make_recorder(
            keys, self.cache, policy, self._missing, fast_path=entry.target.fast_path
        )
        entry.target.install(recorder)  # turns the fast path off until the new lists fill

    # -- switching ------------------------------------------------------------
    def activate(
        self,
        *,
        keep_tensors: bool = False,
        keep_grad: bool = False,
        float16: bool = False,
        max_calls: int | None = None,
    ) -> None:
        """Start recording in every decorated function, imported already or later.

        Args:
            keep_tensors: store torch tensors as they are (on their device)
                instead of ``detach().cpu().numpy()``.
            keep_grad: with ``keep_tensors``, keep them attached to autograd.
            float16: store floating values as float16.
            max_calls: keep only the newest ``max_calls`` values per key (the
                cache then holds ``collections.deque(maxlen=max_calls)`` objects).
        """
        policy = StoragePolicy(keep_tensors, keep_grad, float16, max_calls)
        with self._lock:
            self._policy = policy
            self._active = True
            for entry in self._entries:
                self._install(entry)

    def deactivate(self) -> None:
        """Stop recording: every decorated function runs its original code again."""
        with self._lock:
            self._active = False
            for entry in self._entries:
                entry.target.uninstall()

    def clear(self) -> None:
        """Empty the cache (``len(get_local.cache) == 0`` afterwards)."""
        with self._lock:
            for entry in self._entries:
                if entry.target.fast_path is not None:
                    entry.target.fast_path.disable()  # next call re-adds its key
                for lst in entry.lists:
                    lst.clear()
            self.cache.clear()

    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def is_activate(self) -> bool:
        """Visualizer's spelling of :attr:`is_active`."""
        return self._active

    @property
    def functions(self) -> list[Any]:
        """The decorated functions (after unwrapping), in decoration order."""
        with self._lock:
            return [entry.target.function for entry in self._entries]

    @property
    def policy(self) -> StoragePolicy:
        """The storage options given to the last :meth:`activate`."""
        return self._policy

    def keys_of(self, function: Any) -> list[str]:
        """The cache keys a decorated function records under."""
        with self._lock:
            return [
                f"{e.key_prefix}.{name}"
                for e in self._entries
                if e.target.function is resolve_function(function)
                for name in e.target.names
            ]

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return f"<get_local {state}, {len(self._entries)} functions, {len(self.cache)} keys>"


get_local = GetLocal()
