"""A record written for readers: the manifest (or a shard's part) and, with
``--html`` and ``--viewer``, the pages over its figures and maps, from this one place
for every kind of run."""

from __future__ import annotations

from pathlib import Path

from .manifest import Manifest
from .outdir import OutputDir
from .previous import remove_files

__all__ = ["publish"]


def publish(
    out_dir: OutputDir, manifest: Manifest, relative: Path, html: bool, viewer: bool = False
) -> Manifest:
    """Write ``manifest`` to ``relative``; with ``viewer``, first ``viewer.html`` (the
    explorer over the maps it lists); with ``html``, ``index.html`` and its thumbnails
    (listed as pending while written), which the manifest then lists under ``pages``;
    the pages it listed before and the new pages do not use (thumbnails of figures an
    earlier job drew) are removed first."""
    fresh: list[str] = []
    if viewer:
        from ..viewer.page import VIEWER_FILE
        from .viewer_page import write_run_viewer

        fresh = write_run_viewer(out_dir, manifest)
        if not fresh:  # no maps to show: an earlier page would show other images
            stale = [page for page in manifest.pages if page == VIEWER_FILE]
            remove_files(out_dir.path, stale)
            manifest.pages = [page for page in manifest.pages if page not in stale]
        manifest.pages = list(dict.fromkeys([*fresh, *manifest.pages]))  # index links it
    if html:
        from ..render.html import write_index

        written = [*fresh, *write_index(out_dir.path, manifest, out_dir.write)]
        remove_files(out_dir.path, [p for p in manifest.pages if p not in written])
        manifest.pages = written
    out_dir.write_record(relative, manifest.to_bytes())
    return manifest
