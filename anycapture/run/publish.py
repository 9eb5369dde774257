"""A record written for readers: the manifest (or a shard's part) and, with
``--html``, the page over its figures, from this one place for every kind of run."""

from __future__ import annotations

from pathlib import Path

from .manifest import Manifest
from .outdir import OutputDir
from .previous import remove_files

__all__ = ["publish"]


def publish(out_dir: OutputDir, manifest: Manifest, relative: Path, html: bool) -> Manifest:
    """Write ``manifest`` to ``relative``; with ``html``, first ``index.html`` and its
    thumbnails (listed as pending while written), which the manifest then lists
    under ``pages``; the pages it listed before and the new page does not use
    (thumbnails of figures an earlier job drew) are removed first."""
    if html:
        from ..render.html import write_index

        written = write_index(out_dir.path, manifest, out_dir.write)
        remove_files(out_dir.path, [p for p in manifest.pages if p not in written])
        manifest.pages = written
    out_dir.write_record(relative, manifest.to_bytes())
    return manifest
