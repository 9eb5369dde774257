"""One ``@get_local(...)`` decoration: a listener of its function while active.

It records into ``owner.cache`` under the keys ``owner`` hands out (see
``GetLocal._list_for``): a list is looked up again whenever the cache no longer
holds it (after ``clear()``), so lists handed out before keep their values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .cache import RecentValues
from .instrument import _Sentinel
from .recorder import FastPath, InstrumentedFunction, warn_unstorable
from .storage import StoragePolicy

__all__ = ["Decoration"]

_NO_LIST: Any = object()  # never what the cache holds: the first record claims a key
_dict_get = dict.get


class Decoration:
    """One ``@get_local(...)`` decoration: a listener of its function while active."""

    with_instance = False

    def __init__(self, owner: Any, hub: InstrumentedFunction, names: tuple[str, ...]) -> None:
        self.owner = owner
        self.hub = hub
        self.names = names
        self.wants_fast_path = len(names) == 1
        self.overrides: dict[str, Any] = {}
        self.policy = StoragePolicy()
        self.keys: list[str | None] = [None] * len(names)
        self.lists: list[Any] = [_NO_LIST] * len(names)  # never what the cache holds
        self.fast_path: FastPath | None = None
        self.record: Callable[..., None] = _not_configured

    @property
    def base_keys(self) -> list[str]:
        return [f"{self.hub.qualname}.{name}" for name in self.names]

    def bind_fast_path(self, fast_path: FastPath | None) -> None:
        self.fast_path = fast_path

    def new_list(self) -> Any:
        maxlen = self.policy.max_calls
        return [] if maxlen is None else RecentValues(maxlen=maxlen)

    def configure(self, policy: StoragePolicy, collate: Callable[[Any], Any] | None) -> None:
        """Take a new storage policy; the record function is rebuilt for it."""
        self.policy = policy
        convert = collate or policy.converter()
        if self.wants_fast_path:
            self.record = self._make_record_one(convert, collate is None)
        else:
            self.record = self._make_record_many(convert)

    def _make_record_one(self, convert: Callable[[Any], Any], bypass: bool) -> Callable[..., None]:
        # The common seed case, kept lean: it runs on every call the fast path skips.
        owner, report, key_list = self.owner, self.owner._missing, self.owner._list_for
        unchanged: set[type] = set()  # types stored as they are: no conversion call
        stores_unchanged = self.policy.stores_unchanged if bypass else (lambda _cls: False)

        def record_one(values: tuple[Any, ...]) -> None:
            value = values[0]
            cls = type(value)
            if cls is _Sentinel:
                report(self.keys[0] or self.base_keys[0], value)
                return
            lst = self.lists[0]
            if _dict_get(owner.cache, self.keys[0]) is not lst:
                lst = key_list(self, 0)
            if cls not in unchanged and stores_unchanged(cls):
                unchanged.add(cls)
            if cls in unchanged:
                lst.append(value)
                fast = self.fast_path
                if fast is not None:
                    fast.enable(cls, lst.append)  # later values of cls skip this call
            else:
                try:
                    stored = convert(value)
                except Exception as exc:  # never the user's call that fails
                    warn_unstorable(
                        owner._unstorable, self.keys[0] or self.base_keys[0], value, exc
                    )
                    return
                lst.append(stored)

        return record_one

    def _make_record_many(self, convert: Callable[[Any], Any]) -> Callable[..., None]:
        owner, report, key_list = self.owner, self.owner._missing, self.owner._list_for

        def record_many(values: tuple[Any, ...]) -> None:
            for i, value in enumerate(values):
                if type(value) is _Sentinel:
                    report(self.keys[i] or self.base_keys[i], value)
                    continue
                try:
                    stored = convert(value)
                except Exception as exc:  # never the user's call that fails
                    warn_unstorable(
                        owner._unstorable, self.keys[i] or self.base_keys[i], value, exc
                    )
                    continue
                lst = self.lists[i]
                if _dict_get(owner.cache, self.keys[i]) is not lst:
                    lst = key_list(self, i)
                lst.append(stored)

        return record_many


def _not_configured(_values: tuple[Any, ...]) -> None:
    """An entry's record before its first activation (never attached then)."""
