"""``--viewer``: the interactive explorer (``viewer.html``) over a run's images, built
from the maps files the manifest lists, at the one place every kind of run publishes
its records (:mod:`.publish`): a plain run, a resumed one and merged shards give the
same page, and it is replaced and removed like every output (``pages``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .manifest import Manifest
    from .outdir import OutputDir

__all__ = ["write_run_viewer"]


def write_run_viewer(out_dir: OutputDir, manifest: Manifest) -> list[str]:
    """Write ``viewer.html`` over the images whose maps ``manifest`` lists (``--viewer``
    saves them), in the manifest's order; returns the pages written (none without
    maps, with a note).  A listed path that is not safely inside ``--out`` is skipped."""
    from ..viewer import VIEWER_FILE, ViewerPage, record_from_maps
    from .maps_file import load_maps
    from .previous import checked_path, is_regular

    options = manifest.options
    page = ViewerPage(
        _title(manifest),
        cmap=str(options.get("cmap", "viridis")),
        alpha=float(options.get("alpha", 0.6)),
        upsample=str(options.get("upsample", "bilinear")),
    )
    for entry in manifest.maps:
        path = checked_path(out_dir.path, entry.path)
        if path is None or not is_regular(path):
            manifest.notes.append(f"viewer: {entry.path!r} is not a maps file inside --out")
            continue
        try:
            page.add(record_from_maps(load_maps(path, what="maps file"), name=entry.image))
        except ValueError as exc:  # damaged since written (MapsFileError), or NaN maps
            manifest.notes.append(f"viewer: {entry.image} left out ({exc})")
    if not page.images:
        manifest.notes.append("viewer: no image's maps could be read, so no viewer.html")
        return []
    out_dir.write(Path(VIEWER_FILE), page.html().encode("utf-8"))
    return [VIEWER_FILE]


def _title(manifest: Manifest) -> str:
    model = manifest.model.get("name")
    return f"{model}: attention explorer" if model else "attention explorer"
