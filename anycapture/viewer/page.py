"""The explorer page: one self-contained HTML file (no network, no external script or
font) holding every image's quantised maps; the script and style are this package's
``assets/`` files, inlined.  Each image's maps sit in their own inert
``<script type="application/octet-stream">`` element, decoded when the image is opened.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from .encode import ALPHABET, LEVELS, MAX_ERROR
from .records import ViewerImage, encode_image, script_json

__all__ = ["VIEWER_FILE", "ViewerPage", "build_page", "iframe_html", "write_viewer"]

VIEWER_FILE = "viewer.html"
# the page may load nothing: images come as data: URIs, script and style inline
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text("utf-8")


def _script() -> str:
    """The page's script: its two files in one strict function scope."""
    return f'(() => {{\n"use strict";\n{_asset("dom.js")}\n{_asset("viewer.js")}}})();'


class ViewerPage:
    """An explorer page built one image at a time: only each image's compact text is
    kept (about 1 byte per weight), never its float maps, so a long run's images can
    be added as they are drawn."""

    def __init__(
        self,
        title: str = "attention explorer",
        *,
        cmap: str = "viridis",
        alpha: float = 0.6,
        upsample: str = "bilinear",
    ) -> None:
        from ..render.colour import UPSAMPLING, colormap_lut

        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample {upsample!r}: choose nearest, bilinear or bicubic")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha {alpha} must be between 0 and 1")
        self.title = title
        self.options: dict[str, Any] = {
            "cmap": cmap,
            "lut": colormap_lut(cmap).tobytes().hex(),
            "alpha": alpha,
            "upsample": upsample,
            "alphabet": ALPHABET,
            "levels": LEVELS,
            "maxError": MAX_ERROR,
        }
        self.images: list[dict[str, Any]] = []
        self._data: list[str] = []

    def add(self, record: ViewerImage) -> None:
        """Quantise and keep one image (its maps can be freed afterwards)."""
        encoded = encode_image(record)
        self.images.append(encoded.index)
        self._data.append(encoded.data)

    def html(self) -> str:
        if not self.images:
            raise ValueError("the explorer needs at least one image")
        index = script_json({"title": self.title, **self.options, "images": self.images})
        blobs = [
            f'<script type="application/octet-stream" id="ac-image-{i}">{data}</script>\n'
            for i, data in enumerate(self._data)
        ]
        # the first image, then the script: the page is ready before the browser has
        # read the other images (a long run's file), which follow
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_asset('viewer.css')}</style>\n"
            '</head><body><main id="ac-app"></main>\n'
            f'<script type="application/json" id="ac-index">{index}</script>\n{blobs[0]}'
            f"<script>{_script()}</script>\n{''.join(blobs[1:])}</body></html>\n"
        )

    def write(self, path: Path) -> int:
        """Write the page atomically; returns its size in bytes."""
        from ..render.output import write_bytes_atomic

        data = self.html().encode("utf-8")
        write_bytes_atomic(Path(path), data)
        return len(data)


def build_page(records: Iterable[ViewerImage], title: str = "", **options: Any) -> str:
    """The explorer's HTML for ``records`` (``options``: cmap, alpha, upsample)."""
    page = ViewerPage(title or "attention explorer", **options)
    for record in records:
        page.add(record)
    return page.html()


def write_viewer(
    path: str | Path, records: Iterable[ViewerImage], title: str = "", **options: Any
) -> int:
    """Write the explorer for ``records`` to ``path`` (atomically); returns its bytes.

    ``records`` may be a generator: each image is quantised as it comes.
    """
    page = ViewerPage(title or "attention explorer", **options)
    for record in records:
        page.add(record)
    return page.write(Path(path))


def iframe_html(page: str, height: int = 760) -> str:
    """The page inline in a notebook: an ``<iframe srcdoc>`` keeps its script and ids
    apart from the notebook's (and from other explorers in it)."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width: 100%; '
        f'height: {height}px; border: 1px solid #ddd" '
        'sandbox="allow-scripts" title="attention explorer"></iframe>'
    )
