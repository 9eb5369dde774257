"""``layers``: the query patch's attention in every layer, one sheet per image."""

from __future__ import annotations

import numpy as np

from ..paper import Panel
from ..registry import FigureKind, NotApplicable, Scope, Uses
from ..request import FigureRequest, positive_max
from ..sheet import Sheet, bare_sheet, notebook_sheet, paper_sheet


def file_name(r: FigureRequest) -> str:
    return f"layers_{r.head_tag}_{r.query_tag}.png"


def panels(r: FigureRequest) -> Sheet:
    token = r.layout.token_of(*r.query)
    grids, labels = [], []
    for index, (_name, maps) in enumerate(r.all_layers):
        if maps.shape[-2:] != (r.layout.num_tokens,) * 2:
            continue  # class-attention or windowed layers: the query is not a row here
        _, grid = r.layout.split(r.head_map(maps)[token])
        grids.append(grid)
        labels.append(f"layer {index}")
    if not grids:
        raise NotApplicable("no layer has the query patch as a query (class or window attention)")
    vmax = positive_max(np.stack(grids))
    sheet = [Panel(label, r.blend(g, vmax)) for label, g in zip(labels, grids, strict=True)]
    return sheet, vmax, f"query patch {r.query}, {r.head_label}, every layer"


def bare(r: FigureRequest) -> bytes:
    return bare_sheet(panels(r))


def paper(r: FigureRequest) -> bytes:
    return paper_sheet("layers", r, panels(r))


def notebook(r: FigureRequest) -> object:
    return notebook_sheet(r, panels(r))


KIND = FigureKind(
    name="layers",
    scope=Scope.IMAGE,
    uses=frozenset({Uses.HEAD, Uses.QUERY}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
)
