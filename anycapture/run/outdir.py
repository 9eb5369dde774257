"""The output directory of a run: its lock, file names and atomic writes.

One run at a time per directory (``filelock``: an advisory lock that works on
POSIX and Windows).  The lock file is removed only while it is still held, and a
run that locks a file already removed tries again, so two runs never both hold
"the" lock (deleting it after release let a waiter and a newcomer overlap); every
file appears whole or not at all; image folders never take the
names of the tool's own files, and a symbolic link already inside ``--out`` is
never followed out of it.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..images import safe_stem
from ..render.html import THUMBS
from ..render.output import write_bytes_atomic
from .manifest import MANIFEST

__all__ = [
    "LOCK_NAME",
    "PENDING",
    "SHARDS_DIR",
    "FolderNames",
    "OutputDir",
    "OutputDirError",
    "held_lock",
    "locked_output_dir",
    "output_path",
    "tagged_name",
]

LOCK_NAME = ".anycapture.lock"
SHARDS_DIR = ".shards"  # shards' records (part-K-of-N.json) and locks: run/shards.py
INDEX = "index.html"
PENDING = ".anycapture-pending"  # files being written, not yet in the manifest (see OutputDir)
RESERVED = frozenset({MANIFEST, INDEX, LOCK_NAME, THUMBS, PENDING, SHARDS_DIR})  # an image named
# manifest.json.png gets the folder manifest.json-2, never manifest.json/
_TOP_LEVEL_SUFFIXES = (".png", ".json")  # per-run figures, shard manifests: never a folder
_RESERVED_FOLDED = frozenset(name.casefold() for name in RESERVED)


class FolderNames(set[str]):
    """Folder names already taken: those added, and every name the run's own top-level
    files and folders have or could have (``manifest.json``, ``thumbs``, a per-run
    figure such as ``distance_all_images.png``, a shard's manifest part), so an image
    called ``thumbs.jpg`` or ``distance_all_images.png.jpg`` gets ``thumbs-2``.  Names
    are compared case-folded: ``Cat.jpg`` and ``cat.png`` get ``Cat`` and ``cat-2``."""

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        folded = name.casefold()  # Cat/ and cat/ are one folder on macOS and Windows
        own = folded in _RESERVED_FOLDED or folded.endswith(_TOP_LEVEL_SUFFIXES)
        return own or super().__contains__(folded)

    def add(self, name: str) -> None:
        super().add(name.casefold())


class OutputDirError(UsageError):
    """--out cannot be used; the message says why."""


@dataclass
class OutputDir:
    """Where a run writes: ``path``, one folder per image named from its source.

    List, then publish: every file is named in a pending list (``PENDING``, or its
    shard's, one line each, appended) before it is written, and the list is cleared
    once a manifest naming those files is written (:meth:`write_record`).  A manifest
    write that fails (disk full) thus leaves every figure on disk listed somewhere a
    later run reads (``run/previous.py``), so it can remove them.
    """

    path: Path
    pending: Path = Path(PENDING)  # relative to path
    _taken: set[str] = field(default_factory=FolderNames)
    _checked: set[Path] = field(default_factory=set)
    # run just before the first write: a run refused before it writes anything (a
    # --head the model lacks, found on the first image) leaves the previous output be
    before_first_write: Callable[[], object] | None = None

    def folder_for(self, source: Path) -> str:
        """A unique, safe folder name for an image (``cat``, ``cat-2``...)."""
        return safe_stem(source, self._taken)

    def write(self, relative: Path, data: bytes) -> None:
        """Write an output file (listed as pending first), or a record
        (``manifest.json``, a shard's part: :meth:`write_record`)."""
        if _is_record(relative):
            self.write_record(relative, data)
            return
        self._before_write()
        if self.pending.parent not in self._checked:
            self._real_folders(self.pending.parent)
            self._checked.add(self.pending.parent)
        _append(self.path / self.pending, json.dumps(relative.as_posix()).encode() + b"\n")
        self._write(relative, data)

    def write_record(self, relative: Path, data: bytes) -> None:
        """Write a manifest (or part) that lists every file written so far: the
        pending list is then cleared (a shard's merged manifest.json lists its part)."""
        self._before_write()
        self._write(relative, data)
        with suppress(FileNotFoundError):
            (self.path / self.pending).unlink()

    def _before_write(self) -> None:
        if self.before_first_write is not None:
            pending, self.before_first_write = self.before_first_write, None
            pending()

    def _write(self, relative: Path, data: bytes) -> None:
        if relative.parent not in self._checked:
            self._real_folders(relative.parent)
            self._checked.add(relative.parent)
        write_bytes_atomic(self.path / relative, data)  # replaces a link there, never follows

    def _real_folders(self, folder: Path) -> None:
        """Make every folder on the way to ``folder`` a real directory: a symbolic link
        left in --out (to anywhere) is replaced, so no write lands outside --out."""
        current = self.path
        self.path.mkdir(parents=True, exist_ok=True)
        for part in folder.parts:
            current = current / part
            if current.is_symlink():
                current.unlink()  # the link only; what it points at is left alone
            current.mkdir(exist_ok=True)


def _is_record(relative: Path) -> bool:
    """``manifest.json`` or a shard's ``.shards/part-K-of-N.json``."""
    if relative == Path(MANIFEST):
        return True
    name = relative.name
    return (
        relative.parent == Path(SHARDS_DIR) and name.startswith("part-") and name.endswith(".json")
    )


def _append(path: Path, line: bytes) -> None:
    """Append ``line`` to the file ``path`` itself: a symbolic link there is removed,
    never followed."""
    if path.is_symlink():
        path.unlink()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o666)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@contextmanager
def locked_output_dir(out: Path) -> Iterator[OutputDir]:
    """Create ``out`` and hold an exclusive lock on it for the run."""
    busy = f"--out {out} is in use by another anycapture run; wait for it or use another --out"
    with held_lock(out, out / LOCK_NAME, 0, busy):
        yield OutputDir(out)


@contextmanager
def held_lock(out: Path, path: Path, timeout: float, busy: str) -> Iterator[None]:
    """Hold the lock file ``path`` inside ``out`` (creating its folders), waiting up to
    ``timeout`` seconds, else :class:`OutputDirError` ``busy``.  The holder removes the
    file while it still holds it, so no lock file is left behind, and a waiter that
    then gets the removed file tries again (two runs never both hold "the" lock).
    Folders it made and nobody wrote into are removed too: a run refused before it
    wrote anything leaves no empty --out behind."""
    from filelock import FileLock, Timeout

    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {out} is an existing file; give a directory path")
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    lock = FileLock(path, timeout=timeout)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _acquire(lock, path)
    except Timeout:
        raise OutputDirError(busy) from None
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to --out {out}: {exc.strerror}; choose another directory"
        ) from None
    try:
        yield
    finally:
        with suppress(OSError):  # Windows: filelock removes it on release instead
            path.unlink()  # while held: the next holder of this file retries
        lock.release()
        for folder in made:  # deepest first
            with suppress(OSError):
                folder.rmdir()  # only when empty


def _acquire(lock: Any, path: Path) -> None:
    """Acquire ``lock`` on the file that ``path`` names now (not one a previous run
    removed while a waiter had it open)."""
    for _ in range(1000):
        lock.acquire()
        if _names_the_locked_file(lock, path):
            return
        lock.release()
    raise OSError(errno.EAGAIN, "the lock file keeps being replaced")


def _names_the_locked_file(lock: Any, path: Path) -> bool:
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    if fd is None:  # another filelock layout: it checks for removed files itself
        return True
    try:
        held, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def tagged_name(name: str, tags: str) -> str:
    """``grid_L11_H0_q7-7.png`` + ``_t0.5`` -> ``grid_L11_H0_q7-7_t0.5.png``."""
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}{tags}{dot}{suffix}" if dot else name + tags


def output_path(text: str) -> Path:
    """--out as given on the command line; empty means no directory (not the current one)."""
    if not text.strip():
        raise OutputDirError("--out is empty; give a directory path, e.g. --out anycapture-out")
    return Path(text)
