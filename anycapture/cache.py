"""``get_local.cache``: a plain dict of lists, plus the seeds' ways of reading it.

Only the keys that hold values are listed (``len(cache) == 0`` after ``clear()``),
but reading a decorated function's key gives an empty list instead of
``KeyError``, and Visualizer's bare qualname reads the same list as
``'Qualname.var'`` for a function that captures one name.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CaptureCache", "RecentValues"]

_MISSING: Any = object()


class CaptureCache(dict[str, Any]):
    """A dict whose missing keys may be aliases or known-but-empty keys."""

    def __init__(self, aliases: Mapping[str, str], is_known: Callable[[str], bool]) -> None:
        super().__init__()
        self._aliases = aliases
        self._is_known = is_known

    def _target(self, key: Any) -> Any:
        target = self._aliases.get(key) if isinstance(key, str) else None
        return target if target is not None and dict.__contains__(self, target) else None

    def __missing__(self, key: str) -> Any:
        target = self._target(key)
        if target is not None:
            return dict.__getitem__(self, target)
        if isinstance(key, str) and self._is_known(key):
            return []  # recorded nothing since clear(): empty, as in both seeds
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._target(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is not _MISSING:
            return value
        target = self._target(key)
        return dict.__getitem__(self, target) if target is not None else default

    def __repr__(self) -> str:
        return dict.__repr__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled, deep-copied and saved by torch.save as the seeds' cache is: a plain
        dict of lists (the aliases and the decorator behind them stay behind)."""
        return (dict, ({key: _as_list(values) for key, values in self.items()},))


def _as_list(values: Any) -> Any:
    return list(values) if isinstance(values, deque) else values


class RecentValues(deque[Any]):
    """The newest ``maxlen`` values of a key (``max_calls``/``max_size``).

    A ``collections.deque`` (appends stay C calls and drop the oldest atomically)
    that also slices like the list the seeds give: ``values[:2]``, ``values[-3:]``.
    """

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self)[index]
        return super().__getitem__(index)
