"""What earlier runs left in ``--out``: their records, read safely, and their files.

A run owns only the files that a record names: ``manifest.json``, a shard's part
(``.shards/part-K-of-N.json``) and the pending lists of files being written
(``OutputDir``).  Every path read from them is checked before use
(:func:`checked_path`): relative, inside ``--out``, no ``..``, no symbolic link on
the way.  An entry that fails is ignored, with a note.  A listed file that is a
symbolic link is removed as a link, never its target; ``.shards`` as a link is
never followed.  Records that are not regular files (a FIFO planted as
``manifest.json``) are not opened.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from .manifest import MANIFEST, Manifest
from .outdir import PENDING, SHARDS_DIR

__all__ = [
    "Earlier",
    "checked_path",
    "is_regular",
    "part_paths",
    "read_earlier",
    "read_record",
    "remove_files",
]


def checked_path(out: Path, text: object) -> Path | None:
    """``out / text`` when ``text`` names a place inside ``out`` safely, else None:
    relative, no ``..``, no symbolic link among its folders (the last part may be
    one: it is then removed as a link, never followed)."""
    if not isinstance(text, str) or not text or "\x00" in text or "\\" in text:
        return None
    relative = PurePosixPath(text)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    current = out
    for part in relative.parts[:-1]:
        current = current / part
        if current.is_symlink():
            return None
    return out.joinpath(*relative.parts)


def is_regular(path: Path) -> bool:
    """A regular file itself (not a link, a FIFO, a device or a folder)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def shards_folder(out: Path) -> Path | None:
    """``out/.shards`` when it is a real folder (a link there is never followed)."""
    folder = out / SHARDS_DIR
    return folder if folder.is_dir() and not folder.is_symlink() else None


def part_paths(out: Path) -> list[Path]:
    """The shard parts in ``out``, sorted; none when ``.shards`` is a link."""
    folder = shards_folder(out)
    if folder is None:
        return []
    return sorted(p for p in folder.glob("part-*.json") if is_regular(p))


def pending_name(record: Path) -> Path:
    """The pending list beside a record: ``.anycapture-pending`` for ``manifest.json``,
    ``.shards/.part-0-of-2.json.pending`` for a part (both relative to ``--out``)."""
    if record == Path(MANIFEST):
        return Path(PENDING)
    return record.parent / f".{record.name}.pending"


def read_record(out: Path, relative: Path, notes: list[str] | None = None) -> Manifest | None:
    """A manifest (or part) written before, its unsafe entries dropped (each with a
    note in ``notes``); None when missing, not a regular file, or not a manifest."""
    path = out / relative
    if not is_regular(path):
        return None
    try:
        manifest = Manifest.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    bad: list[str] = []

    def safe(path_text: object) -> bool:
        if checked_path(out, path_text) is not None:
            return True
        bad.append(repr(path_text))
        return False

    manifest = replace(
        manifest,
        figures=[f for f in manifest.figures if safe(f.path)],
        maps=[m for m in manifest.maps if safe(m.path)],
        pages=[p for p in manifest.pages if safe(p)],
    )
    if bad and notes is not None:
        notes.append(
            f"{relative.as_posix()} lists {', '.join(bad[:3])}"
            f"{f' and {len(bad) - 3} more' if len(bad) > 3 else ''}: not a path inside "
            f"--out, ignored"
        )
    return manifest


def read_pending(out: Path, relative: Path) -> list[str]:
    """The files a pending list names (checked like any listed path)."""
    path = out / relative
    if not is_regular(path):
        return []
    names = []
    with suppress(OSError, UnicodeDecodeError):
        for line in path.read_text().splitlines():
            with suppress(ValueError):
                name = json.loads(line)
                if checked_path(out, name) is not None:
                    names.append(name)
    return names


@dataclass
class Earlier:
    """The records an earlier run or job left in ``out``."""

    manifest: Manifest | None = None
    parts: dict[Path, Manifest] = field(default_factory=dict)  # relative path -> part
    pending: list[str] = field(default_factory=list)  # files maybe written, maybe unlisted
    notes: list[str] = field(default_factory=list)  # forged entries, ignored

    def files(self) -> list[str]:
        """Every file the records name (each once)."""
        listed = [*(self.manifest.files() if self.manifest else [])]
        for part in self.parts.values():
            listed += part.files()
        return list(dict.fromkeys([*listed, *self.pending]))

    def records(self) -> list[Manifest]:
        return [m for m in (self.manifest, *self.parts.values()) if m is not None]


def read_earlier(out: Path) -> Earlier:
    """``manifest.json``, every part and every pending list in ``out``."""
    earlier = Earlier()
    earlier.manifest = read_record(out, Path(MANIFEST), earlier.notes)
    earlier.pending = read_pending(out, Path(PENDING))
    for path in part_paths(out):
        relative = path.relative_to(out)
        part = read_record(out, relative, earlier.notes)
        if part is not None:
            earlier.parts[relative] = part
        earlier.pending += read_pending(out, pending_name(relative))
    return earlier


def remove_earlier(out: Path, earlier: Earlier, keep: set[str], inputs: Iterable[Path]) -> None:
    """Replace what ``earlier`` left: its files (but ``keep`` and the run's
    ``inputs``), its parts and pending lists; ``.shards`` when that leaves it empty."""
    remove_files(out, [f for f in earlier.files() if f not in keep], inputs)
    folder = shards_folder(out)
    if folder is not None:
        for path in folder.glob("*part-*"):
            if is_regular(path) and (path.suffix == ".json" or path.name.endswith(".pending")):
                path.unlink()
        with suppress(OSError):
            folder.rmdir()  # only when empty: no shard of another job holds it
    with suppress(FileNotFoundError):
        (out / PENDING).unlink()


def remove_files(out: Path, listed: Iterable[str], inputs: Iterable[Path] = ()) -> list[str]:
    """Delete the files ``listed`` (paths relative to ``out``, checked) and the
    folders that leaves empty; a link is removed, never followed; never an input."""
    keep = set()
    for path in inputs:
        with suppress(OSError):
            info = os.stat(path)
            keep.add((info.st_dev, info.st_ino))
    removed = []
    for relative in dict.fromkeys(listed):
        path = checked_path(out, relative)
        if path is None:
            continue
        if path.is_symlink():
            path.unlink()  # the link only
        elif is_regular(path):
            info = os.stat(path)
            if (info.st_dev, info.st_ino) in keep:
                continue  # --from-maps out/cat/maps.npz -o out reads what it would delete
            path.unlink()
        else:
            continue
        removed.append(relative)
        _remove_empty_folders(out, path.parent)
    return removed


def _remove_empty_folders(out: Path, folder: Path) -> None:
    while folder != out and out in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
