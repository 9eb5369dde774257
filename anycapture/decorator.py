"""``get_local``: the seed-compatible decorator that records final values of locals.

Keys follow both seeds: ``'Qualname.var'`` (AnyCapture) and, for a function that
captures one name, the bare ``'Qualname'`` (Visualizer) as an alias of the same list.
A key belongs to the first function that records under it since the last
``clear()``; another function with the same qualname gets a distinct key and one
warning naming both, so no value is ever lost and keys do not depend on import order.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from .cache import CaptureCache
from .decoration import Decoration
from .instrument import resolve_function
from .recorder import _MissingReporter, instrumented
from .storage import StoragePolicy

__all__ = ["GetLocal", "get_local"]

F = TypeVar("F")

_UNSET: Any = object()
_dict_get = dict.get


class GetLocal:
    """Decorator factory plus the shared cache, as in Visualizer and AnyCapture.

    >>> @get_local('attn')            # doctest: +SKIP
    ... def forward(self, x): ...
    >>> get_local.activate()          # before or after the import, either works
    >>> get_local.cache               # {'Attention.forward.attn': [array, ...]}
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: list[Decoration] = []
        self._owners: dict[str, Decoration] = {}  # key -> the entry recording under it
        self._aliases: dict[str, str] = {}  # Visualizer's bare qualname -> key
        self._warned: set[tuple[str, str]] = set()
        self.cache: dict[str, Any] = CaptureCache(self._aliases, self._known_key)
        self._policy = StoragePolicy()
        self._collate: Callable[[Any], Any] | None = None
        self._active = False
        self._missing = _MissingReporter()
        self._unstorable: set[str] = set()  # keys warned of a value that cannot be stored
        self._missing_names: list[tuple[Any, tuple[str, ...]]] = []
        self._warned_missing: set[tuple[str, tuple[str, ...]]] = set()

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
        if len(set(names)) != len(names):
            raise TypeError(f"get_local names a variable twice: {names!r}")
        overrides = {
            k: v
            for k, v in dict(
                keep_tensors=keep_tensors, keep_grad=keep_grad, float16=float16, max_calls=max_calls
            ).items()
            if v is not _UNSET
        }
        StoragePolicy(**overrides)  # validate now, at decoration, not at first call

        def decorate(obj: F) -> F:
            hub = instrumented(obj)
            present = tuple(n for n in names if n in hub.available)
            if len(present) < len(names):  # the seeds import it and record nothing
                self._note_missing(hub, [n for n in names if n not in present])
            if not present:
                return obj
            entry = Decoration(self, hub, present)
            entry.overrides = overrides
            with self._lock:
                for other in self._entries:
                    twice = set(other.names) & set(names)
                    if other.hub is hub and twice:
                        raise TypeError(
                            f"{hub.qualname} is already decorated with get_local for "
                            f"{', '.join(sorted(twice))}"
                        )
                if self._active:
                    self._install(entry, self._merged(entry, self._policy))
                self._entries.append(entry)  # only once nothing can fail any more
            return obj

        return decorate

    def _note_missing(self, hub: Any, missing: list[str]) -> None:
        """A decorator naming locals the function does not have: kept, to warn once
        it is active (both seeds import such code and only fail when it runs)."""
        with self._lock:
            self._missing_names.append((hub, tuple(missing)))
            if self._active:
                self._warn_missing()

    def _warn_missing(self) -> None:
        for hub, missing in self._missing_names:
            if (hub.qualname, missing) in self._warned_missing:
                continue
            self._warned_missing.add((hub.qualname, missing))
            warnings.warn(
                f"anycapture: @get_local names {', '.join(map(repr, missing))} but "
                f"{hub.qualname} has no such local (its locals: "
                f"{', '.join(hub.available) or 'none'}): nothing is recorded for "
                f"{'it' if len(missing) == 1 else 'them'}",
                stacklevel=4,
            )

    def _merged(self, entry: Decoration, policy: StoragePolicy) -> StoragePolicy:
        try:
            return replace(policy, **entry.overrides)
        except ValueError as exc:
            raise ValueError(f"get_local options for {entry.hub.qualname}: {exc}") from None

    def _install(self, entry: Decoration, policy: StoragePolicy) -> None:
        entry.configure(policy, self._collate)
        self._resize(entry)
        entry.hub.attach(entry)

    def _resize(self, entry: Decoration) -> None:
        """Re-activation keeps recorded values; a new ``max_calls`` bounds them."""
        for i, key in enumerate(entry.keys):
            lst = _dict_get(self.cache, key) if key is not None else None
            if lst is None or self._owners.get(key or "") is not entry:
                continue
            if getattr(lst, "maxlen", None) != entry.policy.max_calls:
                resized = entry.new_list()
                resized.extend(list(lst)[-(entry.policy.max_calls or len(lst) or 1) :])
                self.cache[key] = entry.lists[i] = resized

    # -- keys -----------------------------------------------------------------
    def _list_for(self, entry: Decoration, i: int) -> Any:
        """The list ``entry`` records name ``i`` into now: its own key's list if the
        cache still holds it, else a new list under a key it claims."""
        with self._lock:
            cache, key = self.cache, entry.keys[i]
            if key is not None and self._owners.get(key) is entry and key in cache.keys():
                lst = _dict_get(cache, key)
            else:
                key = self._claim(entry, entry.base_keys[i])
                lst = entry.new_list()
                cache[key] = lst
            entry.keys[i], entry.lists[i] = key, lst
            if len(entry.names) == 1:
                self._aliases.setdefault(key.rsplit(".", 1)[0], key)
            if entry.fast_path is not None:
                entry.fast_path.disable()  # the recorder re-enables it for the new list
            return lst

    def _claim(self, entry: Decoration, base: str) -> str:
        owner = self._owners.setdefault(base, entry)
        if owner is entry:
            return base
        key = base if entry.hub.module == owner.hub.module else f"{entry.hub.module}:{base}"
        n = 1
        while self._owners.setdefault(key, entry) is not entry:
            n += 1
            key = f"{entry.hub.module}:{base}#{n}"
        pair = (base, key)
        if pair not in self._warned:
            self._warned.add(pair)
            warnings.warn(
                f"anycapture: two functions named {entry.hub.qualname} record "
                f"'{base}' (one in {owner.hub.module}, one in {entry.hub.module}); the "
                f"first to record since clear() keeps it, the other's values go to '{key}'",
                stacklevel=4,
            )
        return key

    def _known_key(self, key: str) -> bool:
        with self._lock:
            for entry in self._entries:
                keys = [*entry.base_keys, *(k for k in entry.keys if k)]
                if len(entry.names) == 1:
                    keys += [k.rsplit(".", 1)[0] for k in list(keys)]
                if key in keys:
                    return True
            return False

    # -- switching ------------------------------------------------------------
    def activate(
        self,
        max_size: int | None = None,
        *,
        keep_tensors: bool = False,
        keep_grad: bool = False,
        float16: bool = False,
        max_calls: int | None = None,
    ) -> None:
        """Start recording in every decorated function, imported already or later.

        Values recorded before are kept (re-activating never drops them).

        Args:
            max_size: AnyCapture's name for ``max_calls`` (``None`` or <= 0: unbounded).
            keep_tensors: store torch tensors as they are (on their device)
                instead of ``detach().cpu().numpy()``.
            keep_grad: with ``keep_tensors``, keep them attached to autograd.
            float16: store floating values as float16.
            max_calls: keep only the newest ``max_calls`` values per key (the
                cache then holds ``RecentValues``: a ``collections.deque(maxlen=max_calls)``
                that also slices like a list).
        """
        if max_size is not None:
            if max_calls is not None:
                raise TypeError("give max_calls or AnyCapture's max_size, not both")
            max_calls = _normalise_size(max_size)
        self._apply(StoragePolicy(keep_tensors, keep_grad, float16, max_calls), install=True)

    def _apply(self, policy: StoragePolicy, install: bool) -> None:
        """Give every entry ``policy`` (all validated first, so a bad one changes
        nothing), bound the values recorded so far, and attach them if ``install``."""
        with self._lock:
            merged = [(entry, self._merged(entry, policy)) for entry in self._entries]
            self._policy = policy
            self._active = self._active or install
            if install:
                self._warn_missing()
            for entry, entry_policy in merged:
                if install:
                    self._install(entry, entry_policy)
                else:
                    entry.policy = entry_policy
                    self._resize(entry)

    def deactivate(self) -> None:
        """Stop recording: every decorated function runs its original code again
        (unless a ``capture()`` of it is running); recorded values are kept."""
        with self._lock:
            self._active = False
            for entry in self._entries:
                entry.hub.detach(entry)

    def clear(self) -> None:
        """Empty the cache: ``len(get_local.cache) == 0``; a decorated function's key
        still reads as an empty list, and lists handed out before keep their values."""
        with self._lock:
            for entry in self._entries:
                if entry.fast_path is not None:
                    entry.fast_path.disable()  # next call re-adds its key
            self._owners.clear()
            self._aliases.clear()
            self.cache.clear()

    # -- AnyCapture 0.1.4's code-level API ------------------------------------
    def is_activated(self) -> bool:
        """AnyCapture's spelling of :attr:`is_active`."""
        return self._active

    def get_cache(self) -> dict[str, Any]:
        """AnyCapture's accessor of :attr:`cache`."""
        return self.cache

    def set_size(self, max_size: int | None) -> int | None:
        """AnyCapture's ``set_size``: bound every key to the newest ``max_size`` values
        (``None`` or <= 0: unbounded), existing values included; returns the bound."""
        bound = _normalise_size(max_size)
        self._apply(replace(self._policy, max_calls=bound), install=self._active)
        return bound

    def set_collate_fn(self, collate_fn: Callable[[Any], Any] | None = None) -> Any:
        """AnyCapture's ``set_collate_fn``: store ``collate_fn(value)`` instead of the
        default conversion (``None`` restores it); returns the function."""
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError("collate_fn must be callable or None.")
        with self._lock:
            self._collate = collate_fn
            self._apply(self._policy, install=self._active)
        return collate_fn

    # -- state ----------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def is_activate(self) -> bool:
        """The seeds' spelling of :attr:`is_active`; assigning it (de)activates."""
        return self._active

    @is_activate.setter
    def is_activate(self, value: bool) -> None:
        if value:
            self._apply(self._policy, install=True)
        else:
            self.deactivate()

    @property
    def functions(self) -> list[Any]:
        """The decorated functions (after unwrapping), in decoration order."""
        with self._lock:
            self._entries = [e for e in self._entries if e.hub.function is not None]
            return [entry.hub.function for entry in self._entries]

    @property
    def policy(self) -> StoragePolicy:
        """The storage options given to the last :meth:`activate`."""
        return self._policy

    def names_of(self, function: Any) -> tuple[str, ...]:
        """The local names ``get_local`` captures in ``function`` (none if undecorated)."""
        target = resolve_function(function)
        with self._lock:
            return tuple(
                name for e in self._entries if e.hub.function is target for name in e.names
            )

    def keys_of(self, function: Any) -> list[str]:
        """The cache keys a decorated function records under (now, or by default)."""
        target = resolve_function(function)
        with self._lock:
            return [
                key or base
                for e in self._entries
                if e.hub.function is target
                for key, base in zip(e.keys, e.base_keys, strict=True)
            ]

    def __repr__(self) -> str:
        state = "active" if self._active else "inactive"
        return f"<get_local {state}, {len(self._entries)} functions, {len(self.cache)} keys>"


def _normalise_size(max_size: Any) -> int | None:
    """AnyCapture's rule: ``None``, zero or negative mean unbounded."""
    if max_size is None:
        return None
    if isinstance(max_size, bool) or not isinstance(max_size, (int, float)):
        raise TypeError(f"max_size must be an int or None, got {type(max_size).__name__}")
    return int(max_size) if int(max_size) > 0 else None


get_local = GetLocal()
