"""``rollout``: attention rollout over every layer (from a prefix token, or from the
query patch when the model has none), once per image."""

from __future__ import annotations

import numpy as np

from ...analysis import rollout
from ..paper import Panel
from ..registry import FigureKind, NotApplicable, Scope, Uses
from ..request import FigureRequest, positive_max
from ..sheet import Sheet, bare_sheet, notebook_sheet, paper_sheet


def file_name(r: FigureRequest) -> str:
    return f"rollout_T{r.token}_{r.fusion}_d{r.discard_ratio:g}.png"


def panels(r: FigureRequest) -> Sheet:
    square = [m for _, m in r.all_layers if m.shape[-2:] == (r.layout.num_tokens,) * 2]
    if not square:
        raise NotApplicable(
            "rollout needs layers whose maps cover every token; this model has none"
        )
    result = rollout(square, r.fusion, r.discard_ratio)
    if r.layout.prefix_tokens:
        row, source = result[r.token], f"from the {r.layout.prefix_names[r.token]} token"
    else:
        row, source = result[r.layout.token_of(*r.query)], f"from patch {r.query}"
    _, grid = r.layout.split(row)
    vmax = positive_max(grid)
    image = np.asarray(r.view.convert("RGB"))
    sheet = [
        Panel("input", image),
        Panel(f"rollout over {len(square)} layers", r.blend(grid, vmax)),
    ]
    header = f"attention rollout {source} ({r.fusion} fusion, discard {r.discard_ratio:g})"
    return sheet, vmax, header


def bare(r: FigureRequest) -> bytes:
    return bare_sheet(panels(r))


def paper(r: FigureRequest) -> bytes:
    return paper_sheet("rollout", r, panels(r))


def notebook(r: FigureRequest) -> object:
    return notebook_sheet(r, panels(r))


KIND = FigureKind(
    name="rollout",
    scope=Scope.IMAGE,
    uses=frozenset({Uses.TOKEN, Uses.FUSION, Uses.DISCARD_RATIO}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
)
