"""A static, offline ``index.html`` over a run's figures (for CI artifact pages).

Everything is inline or relative: no scripts, fonts or styles from the network.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import write_bytes_atomic

if TYPE_CHECKING:
    from ..run.manifest import FigureEntry, Manifest

__all__ = ["write_index"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; color: #555; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; background: white; padding: .5em; border: 1px solid #ddd; }
figure img { max-width: 520px; height: auto; display: block; image-rendering: auto; }
figcaption { font-size: .85em; color: #555; margin-top: .3em; }
.meta { color: #555; } code { background: #eee; padding: 0 .2em; }
"""


def write_index(out: Path, manifest: Manifest) -> list[str]:
    """Write ``out/index.html`` listing every figure of the manifest, per image and layer
    (per-run figures last, under "all images")."""
    model = manifest.model
    by_image: dict[str | None, dict[Any, list[FigureEntry]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for figure in manifest.figures:
        by_image[figure.image][figure.layer].append(figure)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>anycapture: {html.escape(str(model.get('name', '')))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Attention maps of <code>{html.escape(str(model.get('name', '?')))}</code></h1>",
        '<p class="meta">'
        + html.escape(
            f"{len(model.get('layers', []))} layers, {model.get('heads', '?')} heads, "
            f"grid {model.get('grid', '?')}, prefix tokens {model.get('prefix_names', [])}, "
            f"pretrained: {model.get('pretrained')}"
        )
        + "</p>",
    ]
    for note in manifest.notes:
        parts.append(f'<p class="meta">Note: {html.escape(note)}</p>')
    for image, layers in sorted(by_image.items(), key=lambda item: item[0] is None):
        title = "all images" if image is None else Path(image).name
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for layer in sorted(layers, key=lambda v: (v is not None, v if v is not None else -1)):
            figures = layers[layer]
            heading = "all layers" if layer is None else f"layer {layer} ({figures[0].layer_name})"
            parts.append(f'<h3>{html.escape(heading)}</h3><div class="figures">')
            for figure in figures:
                src = html.escape(figure.path, quote=True)
                caption = html.escape(_caption(figure))
                parts.append(
                    f'<figure><a href="{src}"><img src="{src}" alt="{caption}" loading="lazy">'
                    f"</a><figcaption>{caption}</figcaption></figure>"
                )
            parts.append("</div>")
    parts.append("</body></html>\n")
    path = out / "index.html"
    write_bytes_atomic(path, "\n".join(parts).encode())
    return ["index.html"]


def _caption(figure: FigureEntry) -> str:
    from .kinds import KINDS

    bits = [figure.figure]
    if figure.head is not None:
        bits.append(f"head {figure.head}")
    if figure.query:
        bits.append(f"query {tuple(figure.query)}")
    kind = KINDS[figure.figure] if figure.figure in KINDS else None
    if kind is not None and figure.values:
        describe = kind.aggregate.caption if figure.image is None and kind.aggregate else None
        describe = describe or kind.caption
        if describe is not None:
            bits.append(describe(figure.values))
    return ", ".join(bits)
