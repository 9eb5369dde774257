"""``layers``: the query patch's attention in every layer, one sheet per image.

Every panel boxes the query patch and, like ``grid``, shows each prefix token (CLS,
distillation, registers) as a cell above the image coloured by its weight.
"""

from __future__ import annotations

from ..colour import colourise
from ..paper import Panel
from ..registry import FigureKind, NotApplicable, Scope, Uses
from ..request import FigureRequest
from ..sheet import (
    Sheet,
    bare_sheet,
    mark_patch,
    notebook_sheet,
    panel_maxima,
    paper_sheet,
    prefix_strip,
)


def file_name(r: FigureRequest) -> str:
    return f"layers_{r.head_tag}_{r.query_tag}.png"


def panels(r: FigureRequest) -> Sheet:
    token = r.layout.token_of(*r.query)
    rows, labels = [], []
    for index, (_name, maps) in enumerate(r.all_layers):
        if maps.shape[-2:] != (r.layout.num_tokens,) * 2:
            continue  # class-attention or windowed layers: the query is not a row here
        rows.append(r.head_map(maps)[token])
        labels.append(f"layer {index}")
    if not rows:
        raise NotApplicable("no layer has the query patch as a query (class or window attention)")
    maxima, vmax = panel_maxima(rows, r.scale)
    sheet = []
    for label, row, top in zip(labels, rows, maxima, strict=True):
        prefix, grid = r.layout.split(row)
        pixels = mark_patch(r.blend(grid, top), r.layout.grid, r.query)
        pixels, names = prefix_strip(
            pixels,
            r.layout.grid,
            prefix,
            r.layout.prefix_names,
            lambda w, top=top: colourise(w, r.cmap, 0.0, top),
        )
        title = f"{label} (max {top:.2g})" if r.scale == "each" else label
        sheet.append(Panel(title, pixels, names))
    scale = "each panel its own scale" if r.scale == "each" else "one shared scale"
    header = f"query patch {r.query} (boxed), {r.head_label}, every layer; {scale}"
    return sheet, vmax, header


def bare(r: FigureRequest) -> bytes:
    return bare_sheet(panels(r))


def paper(r: FigureRequest) -> bytes:
    return paper_sheet("layers", r, panels(r))


def notebook(r: FigureRequest) -> object:
    return notebook_sheet(r, panels(r))


KIND = FigureKind(
    name="layers",
    scope=Scope.IMAGE,
    uses=frozenset({Uses.HEAD, Uses.QUERY, Uses.SCALE}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
)
