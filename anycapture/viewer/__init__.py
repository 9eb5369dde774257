"""The interactive attention explorer: one offline HTML page per run or notebook result.

>>> from anycapture.viewer import record_from_maps, write_viewer   # doctest: +SKIP
>>> write_viewer("out/viewer.html", [record_from_maps(maps)])       # doctest: +SKIP

Pick an image, point at a patch: the page shows that query's attention for the chosen
layer and head (or the head mean), the prefix-token maps and the rollout.  numpy and
Pillow only (matplotlib for the colormap's table); no torch.
"""

from __future__ import annotations

from .encode import MAX_ERROR
from .page import VIEWER_FILE, ViewerPage, build_page, iframe_html, write_viewer
from .records import ViewerImage, record_from_maps, record_from_result

__all__ = [
    "MAX_ERROR",
    "VIEWER_FILE",
    "ViewerImage",
    "ViewerPage",
    "build_page",
    "iframe_html",
    "record_from_maps",
    "record_from_result",
    "write_viewer",
]
