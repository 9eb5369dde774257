"""A record written for readers: the manifest (or a shard's part) and, with
``--html``, the page over its figures, from this one place for every kind of run."""

from __future__ import annotations

from pathlib import Path

from .manifest import Manifest
from .outdir import OutputDir

__all__ = ["publish"]


def publish(
    out_dir: OutputDir, manifest: Manifest, relative: Path, html: bool, viewer: bool = False
) -> Manifest:
    """Write ``manifest`` to ``relative``; with ``viewer``, first ``viewer.html`` (the
    explorer over the maps it lists); with ``html``, ``index.html`` and its thumbnails
    (listed as pending while written), which the manifest then lists under ``pages``
    with the pages it listed already."""
    if viewer:
        from .viewer_page import write_run_viewer

        written = write_run_viewer(out_dir, manifest)
        manifest.pages = list(dict.fromkeys([*written, *manifest.pages]))
    if html:
        from ..render.html import write_index

        written = write_index(out_dir.path, manifest, out_dir.write)
        manifest.pages = list(dict.fromkeys([*written, *manifest.pages]))
    out_dir.write_record(relative, manifest.to_bytes())
    return manifest
