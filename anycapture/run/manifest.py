"""The run's ``manifest.json`` as typed records: what was written, for what image.

Key names and order are the file's contract (extend, never rename); ``html.py``
reads these records.  A kind's extra numbers (``values``: ``distance_px``,
``entropy_nats``, ``classes``, ...) are keys of the entry itself, after the fixed
ones, and appear only when a kind gives some.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MANIFEST",
    "FigureEntry",
    "Manifest",
    "MapsEntry",
    "SkippedEntry",
    "WriteThrottle",
    "head_entry",
]

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FigureEntry:
    """One figure file. ``image`` is None for a per-run figure, ``layer`` None for a
    per-image or per-run one."""

    image: str | None
    figure: str
    layer: int | None
    layer_name: str | None
    head: int | str | None  # an index or "mean"; None when the kind ignores --head
    query: list[int] | None
    window: list[int] | None  # (shown, count) of a windowed layer
    style: str
    path: str  # relative to the output directory
    values: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "image": self.image,
            "figure": self.figure,
            "layer": self.layer,
            "layer_name": self.layer_name,
            "head": self.head,
            "query": self.query,
            "window": self.window,
            "style": str(self.style),
            "path": self.path,
        }
        for key, value in (self.values or {}).items():
            if key in data:
                raise ValueError(f"figure value {key!r} would overwrite a manifest key")
            data[key] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FigureEntry:
        fixed = {k: data.get(k) for k in cls.__dataclass_fields__ if k != "values"}
        extra = {k: v for k, v in data.items() if k not in cls.__dataclass_fields__}
        return cls(**fixed, values=extra or None)


def head_entry(head: int | None) -> int | str:
    """A figure's ``head``: its index, or "mean" for every head averaged."""
    return "mean" if head is None else head


@dataclass(frozen=True)
class MapsEntry:
    image: str
    path: str


@dataclass(frozen=True)
class SkippedEntry:
    """An input the run left out, and why (the line it printed)."""

    image: str
    reason: str


@dataclass
class Manifest:
    """What a run wrote so far; ``complete`` only once every figure is written."""

    model: dict[str, Any]
    figures: list[FigureEntry] = field(default_factory=list)
    maps: list[MapsEntry] = field(default_factory=list)
    complete: bool = False
    notes: list[str] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # the run's figure options
    pages: list[str] = field(default_factory=list)  # index.html and its thumbnails
    # --resume and --shard (run/plan.py): what decides the figures' content, and the
    # images whose figures are all written
    job_options: dict[str, Any] | None = None
    images_done: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "figures": [f.to_json() for f in self.figures],
            "maps": [{"image": m.image, "path": m.path} for m in self.maps],
            "complete": self.complete,
            "notes": list(self.notes),
            "skipped": [{"image": s.image, "reason": s.reason} for s in self.skipped],
            "options": dict(self.options),
            "pages": list(self.pages),
            "job_options": self.job_options,
            "images_done": list(self.images_done),
        }

    def files(self) -> list[str]:
        """Every file this manifest lists, relative to the output directory."""
        return [f.path for f in self.figures] + [m.path for m in self.maps] + self.pages

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            model=dict(data.get("model", {})),
            figures=[FigureEntry.from_json(f) for f in data.get("figures", [])],
            maps=[MapsEntry(m["image"], m["path"]) for m in data.get("maps", [])],
            complete=bool(data.get("complete")),
            notes=list(data.get("notes", [])),
            skipped=[SkippedEntry(s["image"], s["reason"]) for s in data.get("skipped", [])],
            options=dict(data.get("options", {})),
            pages=list(data.get("pages", [])),
            job_options=data.get("job_options"),
            images_done=list(data.get("images_done", [])),
        )


@dataclass
class WriteThrottle:
    """When a run rewrites its growing manifest between images.

    Rewriting it whole after every image is quadratic over a run (1000 images:
    half a million entries serialised).  The first write is at once; then one
    every ``interval_s`` at most, and never more often than keeps writing under
    ``share`` of the time (a write that took 0.2 s waits 10 s), so the work is
    linear in the run's length.  The end, an interrupt and a failure always write
    (``RenderRun``): only a process killed outright leaves the last seconds unlisted.
    """

    interval_s: float = 5.0
    share: float = 0.02
    clock: Callable[[], float] | None = None  # None: the module's _now (tests replace it)
    writes: int = 0
    _last: float | None = None  # when the last write ended
    _cost: float = 0.0  # how long it took

    def due(self) -> bool:
        if self._last is None:
            return True
        return self._time() - self._last >= max(self.interval_s, self._cost / self.share)

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Around a write: it is remembered, with what it cost."""
        start = self._time()
        yield
        self._last = self._time()
        self._cost = self._last - start
        self.writes += 1

    def _time(self) -> float:
        return (self.clock or _now)()


def _now() -> float:
    return time.monotonic()
