"""``explain``: class-specific relevance (Chefer, Gur & Wolf, ICCV 2021) over the
image, once per image, for the class ``--class`` names (default: the prediction;
``top3``: the three best).  Needs the model itself (gradients), so it runs a second,
explained forward pass per batch (:mod:`anycapture.explain`); never from saved maps.

``paper``: the input, then one overlay per class titled with its name and the
model's probability, each on its own colour scale (0 to its maximum); ``bare``:
the overlays alone at the model's input resolution, side by side.  Manifest
``values``: ``classes``, each ``{index, name, probability, rank}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import UsageError
from ..colour import encode_png
from ..registry import Drawn, FigureKind, ModelBatch, NotApplicable, Scope, Uses
from ..request import FigureRequest, positive_max
from ..sheet import tile

DPI = 120


@dataclass(frozen=True)
class ExplainedClass:
    """One class's relevance over the patches ``(rows, cols)``, picklable."""

    index: int
    name: str | None
    probability: float
    rank: int
    relevance: np.ndarray

    def caption(self) -> str:
        label = self.name.split(",")[0].strip() if self.name else f"class {self.index}"
        return f"{label} · p = {self.probability:.3f} · #{self.rank}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "probability": round(self.probability, 6),
            "rank": self.rank,
        }


@dataclass(frozen=True)
class Explained:
    """What ``model_pass`` gives one image: the ``--class`` spec and its classes."""

    spec: str
    classes: tuple[ExplainedClass, ...]


def model_pass(batch: ModelBatch) -> list[Explained]:
    from ...explain import explain

    spec = batch.options.target_class or "top1"
    result = explain(batch.model, batch.inputs, spec, batch.sites, batch.layout)
    batch.notes.extend(result.notes)
    return [
        Explained(
            spec,
            tuple(
                ExplainedClass(
                    e.target.index,
                    e.target.name,
                    e.target.probability,
                    e.target.rank,
                    e.patch_map(batch.layout),
                )
                for e in explanations
            ),
        )
        for explanations in result.images
    ]


def _explained(r: FigureRequest) -> Explained:
    if not isinstance(r.extra, Explained):
        raise NotApplicable("explain needs the model's gradients, which this run did not compute")
    return r.extra


def file_name(r: FigureRequest) -> str:
    explained = _explained(r)
    if explained.spec.lower().startswith("top"):
        return f"explain_{explained.spec.lower()}.png"
    return f"explain_c{explained.classes[0].index}.png"


def _overlays(r: FigureRequest) -> list[tuple[np.ndarray, float]]:
    """Each class's overlay and its colour maximum: relevance for different logits has
    no common scale, so each map is shown from 0 to its own maximum (as in the paper)."""
    overlays = []
    for explained in _explained(r).classes:
        grid = np.clip(explained.relevance, 0, None)
        vmax = positive_max(grid)
        overlays.append((r.blend(grid, vmax), vmax))
    return overlays


def bare(r: FigureRequest) -> Drawn:
    return Drawn(encode_png(tile([pixels for pixels, _ in _overlays(r)])), values(r))


def figure(r: FigureRequest) -> Any:
    """The paper figure (a matplotlib Figure): input, then one overlay per class."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    classes = _explained(r).classes
    aspect = r.view.height / r.view.width
    width = 2.9 * (len(classes) + 1) + 0.4
    result = Figure(figsize=(width, 2.6 * aspect + 1.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(result)
    axes = result.subplots(1, len(classes) + 1, squeeze=False)[0]
    axes[0].imshow(np.asarray(r.view.convert("RGB")))
    axes[0].set_title("input", fontsize=8)
    axes[0].set_axis_off()
    for axis, explained, (pixels, vmax) in zip(axes[1:], classes, _overlays(r), strict=True):
        axis.imshow(pixels)
        axis.set_title(explained.caption(), fontsize=8)
        axis.set_axis_off()
        bar = result.colorbar(ScalarMappable(Normalize(0.0, vmax), r.cmap), ax=axis, shrink=0.8)
        bar.ax.tick_params(labelsize=6)
    header = "class relevance (Chefer et al. 2021), each map from 0 to its maximum"
    result.suptitle(f"{r.title}\n{header}" if r.title else header, fontsize=9, color="#333333")
    return result


def paper(r: FigureRequest) -> Drawn:
    drawn = figure(r)
    drawn.canvas.draw()
    return Drawn(encode_png(np.asarray(drawn.canvas.buffer_rgba())[..., :3]), values(r))


def notebook(_r: FigureRequest) -> Any:
    raise UsageError(
        "explain needs the model itself (gradients), which an AttentionResult does not "
        "hold: call anycapture.explain.explain(model, batch, classes) instead"
    )


def values(r: FigureRequest) -> dict[str, Any]:
    return {"classes": [c.to_json() for c in _explained(r).classes]}


def caption(entry_values: Mapping[str, Any]) -> str:
    classes = entry_values.get("classes") or []
    return "; ".join(
        f"{c['name'] or 'class'} (class {c['index']}, p = {c['probability']:.3f})" for c in classes
    )


KIND = FigureKind(
    name="explain",
    scope=Scope.IMAGE,
    uses=frozenset({Uses.TARGET_CLASS}),
    file_name=file_name,
    bare=bare,
    paper=paper,
    notebook=notebook,
    model_pass=model_pass,
    caption=caption,
)
