"""Reading input images for the model, in this process or in DataLoader workers.

With ``workers`` > 0 a ``torch.utils.data.DataLoader`` reads and resizes the next
batches while the model runs on this one.  An image that cannot be read is handed
back as its error, so it is skipped with the same one line as without workers;
any other error of ours is raised here, in this process, as itself.  Workers ignore
SIGINT and SIGTERM: this process handles them and shuts the workers down.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..decode import FULL_SIZE
from ..errors import AnycaptureError
from ..images import ImageInputError, Preprocessor, read_image
from ..interrupts import ignore_signals

__all__ = ["Decoded", "ImageSize", "decoded_batches"]


class ImageSize(NamedTuple):
    """An image's (width, height), upright: as the file holds it, and as decoded (at
    most ``MAX_SIDE`` a side: ``decode.py``)."""

    full: tuple[int, int]
    decoded: tuple[int, int]


Decoded = tuple[ImageSize, Any] | ImageInputError
"""An image's sizes (width, height; upright) and the model's view of it (a
Pillow image), or why it could not be read.  Only the view crosses from a worker:
the image itself (up to 4096 pixels a side) would cost more to send than to read."""


def decode(path: Path, preprocessor: Preprocessor) -> Decoded:
    """``path`` read and viewed; an unreadable image is returned as its error."""
    try:
        original = read_image(path)
    except ImageInputError as exc:
        return exc
    full = original.info.get(FULL_SIZE, original.size)
    return ImageSize(full, original.size), preprocessor.view(original)


@dataclass
class _Images:
    """The map-style dataset a DataLoader reads (module level: workers unpickle it)."""

    paths: list[Path]
    preprocessor: Preprocessor

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Decoded | _Raise:
        try:
            return decode(self.paths[index], self.preprocessor)
        except AnycaptureError as exc:  # raised in the main process, as itself
            return _Raise(exc)


@dataclass
class _Raise:
    """An error of ours from a worker, carried back to be raised unchanged."""

    error: AnycaptureError


def _as_list(items: list[Any]) -> list[Any]:
    return items


def _start_worker(_worker: int) -> None:
    """Signals are the main process's to handle; a worker whose parent was killed
    outright (SIGKILL) exits instead of waiting on its queue for ever."""
    ignore_signals()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="anycapture-parent-watch", daemon=True).start()


def decoded_batches(
    paths: list[Path], preprocessor: Preprocessor, batch_size: int, workers: int = 0
) -> Iterator[tuple[list[Path], list[Decoded]]]:
    """Batches of ``(paths, decoded images)`` in input order."""
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    if workers <= 0:
        for batch in batches:
            yield batch, [decode(p, preprocessor) for p in batch]
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(
        _Images(paths, preprocessor),  # type: ignore[arg-type]
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=_start_worker,
        prefetch_factor=2,
    )
    with warnings.catch_warnings():
        # Python 3.12+ warns on any fork of a threaded process; the workers only
        # read images (no lock of ours), as DataLoaders do everywhere on Linux
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        iterator = iter(loader)
    try:
        for batch, items in zip(batches, iterator, strict=True):
            for item in items:
                if isinstance(item, _Raise):
                    raise item.error
            yield batch, items
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:  # now, not when the iterator is collected
            shutdown()
