"""``cls``: a prefix token's attention over the image, per head and averaged, per layer."""

from __future__ import annotations

import numpy as np

from ...analysis import mass_mask, prefix_maps
from ..paper import Panel
from ..registry import FigureKind, LayerView, Scope, Uses
from ..request import FigureRequest
from ..sheet import (
    Sheet,
    bare_sheet,
    check_sheet_heads,
    notebook_sheet,
    panel_maxima,
    paper_sheet,
)


def file_name(r: FigureRequest) -> str:
    return f"cls_L{r.layer_index:02d}_T{r.token}.png"


def skip(view: LayerView) -> str:
    if view.layout is not None and not view.layout.prefix_tokens:
        return f"{view.layer} has no prefix token (patches only): cls skipped"
    return ""


def panels(r: FigureRequest) -> Sheet:
    check_sheet_heads("cls", r.maps.shape[0])
    grids = prefix_maps(r.maps, r.layout, r.token)  # (heads + 1, rows, cols)
    if r.threshold is not None:
        grids = np.stack([g * mass_mask(g, r.threshold) for g in grids])
    maxima, vmax = panel_maxima(list(grids), r.scale)
    heads = r.maps.shape[0]
    labels = [f"head {h}" for h in range(heads)] + ["head mean"]
    if r.scale == "each":
        labels = [f"{label} (max {top:.2g})" for label, top in zip(labels, maxima, strict=True)]
    sheet = [
        Panel(label, r.blend(g, top)) for label, g, top in zip(labels, grids, maxima, strict=True)
    ]
    kept = f", top {r.threshold:.0%} of the mass" if r.threshold is not None else ""
    name = r.layout.prefix_names[r.token]
    return sheet, vmax, f"{r.layer}: attention from the {name} token to the patches{kept}"


def bare(r: FigureRequest) -> bytes:
    return bare_sheet(panels(r))


def paper(r: FigureRequest) -> bytes:
    return paper_sheet("cls", r, panels(r))


def notebook(r: FigureRequest) -> object:
    return notebook_sheet(r, panels(r))


KIND = FigureKind(
    name="cls",
    scope=Scope.LAYER,
    uses=frozenset({Uses.TOKEN, Uses.THRESHOLD, Uses.SCALE}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    skip=skip,
)
