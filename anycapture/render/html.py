"""A static, offline ``index.html`` over a run's figures (for CI artifact pages).

Everything is inline or relative: no scripts, fonts or styles from the network.
The page stays light: each figure shows as a JPEG thumbnail (``thumbs/``; small
PNGs, such as bare figures, are shown as they are) that links to its full-size PNG, images load
lazily, and a table of contents links one section per image.  A CSS grid gives as
many columns as the window fits; sheets (wide figures) take the full width.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .output import write_bytes_atomic

if TYPE_CHECKING:
    from ..run.manifest import FigureEntry, Manifest

__all__ = ["INDEX", "THUMBS", "write_index"]

Write = Callable[[Path, bytes], None]
INDEX = "index.html"
THUMBS = "thumbs"
THUMB_WIDTH = 640  # a figure in a grid column (about 420 CSS px, sharp on 1.5x screens)
WIDE_THUMB_WIDTH = 1400  # a sheet across the page
SMALL_PNG = 64_000  # bytes: a PNG this small is shown as it is (bare figures)
WIDE = 1.6  # width / height from which a large figure is a sheet...
WIDE_FROM = 960  # ...pixels wide: sheets of panels take the full width
JPEG_QUALITY = 85

_STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1.5em 2vw;
  max-width: 1800px; color: #222; background: #f6f6f6; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { margin: 2em 0 .5em; padding-bottom: .2em;
  border-bottom: 2px solid #ccc; } h3 { font-size: 1.05em; color: #444; margin: 1.4em 0 .5em; }
nav ol { columns: 16em; margin: .5em 0; } nav a { text-decoration: none; }
.meta { color: #444; margin: .2em 0; } code { background: #e8e8e8; padding: 0 .25em; }
.figures { display: grid; gap: 1em; grid-auto-flow: row dense;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 420px), 1fr)); }
figure { margin: 0; background: white; padding: .6em; border: 1px solid #ddd;
  border-radius: 4px; min-width: 0; }
figure.wide { grid-column: 1 / -1; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: .95em; color: #333; margin-top: .4em; }
figcaption b { color: #000; } figcaption a { font-size: .9em; }
.skipped { color: #8a4b00; }
"""


def write_index(out: Path, manifest: Manifest, write: Write | None = None) -> list[str]:
    """Write ``out/index.html`` (and thumbnails) for every figure of the manifest,
    per image and layer (per-run figures last, under "all images"), through
    ``write(relative, data)`` (a run's ``OutputDir.write``; by default atomically
    into ``out``).  Returns the files written, relative to ``out``, for the
    manifest's ``pages``.  Names that are not UTF-8 (file names are bytes on POSIX)
    are shown with a replacement character, never fatal."""
    from ..viewer.page import VIEWER_FILE

    if write is None:
        write = _writer(out)
    by_image: dict[str | None, list[FigureEntry]] = defaultdict(list)
    for figure in manifest.figures:
        by_image[figure.image].append(figure)
    images = sorted(by_image, key=lambda image: image is None)  # run order; per-run last
    written: list[str] = []
    parts = [*_head(manifest), _contents(images, by_image)]
    if VIEWER_FILE in manifest.pages:  # --viewer wrote it first: the page points to it
        link = f'<a href="{VIEWER_FILE}">Interactive explorer</a>'
        parts.append(f"<p>{link}: point at a patch</p>")
    thumbs = _Thumbs(out, write, written)
    for number, image in enumerate(images):
        parts += _section(thumbs, number, image, by_image[image], manifest.options)
    parts.append("</body></html>\n")
    write(Path(INDEX), _utf8("\n".join(parts)))
    return [INDEX, *written]


def _writer(out: Path) -> Write:
    return lambda relative, data: write_bytes_atomic(out / relative, data)


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8; a name decoded from undecodable bytes (surrogate escapes)
    gets replacement characters."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else None
        if raw is None:
            return text.encode("utf-8", "replace")
        return raw.decode("utf-8", "replace").encode()


def _only_escapes(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _href(path: str) -> str:
    """A relative link to ``path`` that names its bytes (percent-encoded when not UTF-8)."""
    from urllib.parse import quote

    try:
        return html.escape(quote(path.encode("utf-8", "surrogateescape"), safe="/"), quote=True)
    except UnicodeEncodeError:
        return html.escape(path, quote=True)


@dataclass
class _Thumbs:
    """Where thumbnails are read from and written to, and the list of those written."""

    out: Path
    write: Write
    written: list[str]


def _head(manifest: Manifest) -> list[str]:
    model = manifest.model
    name = html.escape(str(model.get("name", "?")))
    facts = [f"{len(model.get('layers', []))} attention layers", f"{model.get('heads', '?')} heads"]
    if model.get("grid"):
        facts.append("patch grid " + "x".join(str(n) for n in model["grid"]))
    prefix = model.get("prefix_names") or []
    facts.append("prefix tokens: " + (", ".join(prefix) if prefix else "none"))
    if model.get("pretrained") is not None:
        meaningful = "pretrained" if model["pretrained"] else "random (the maps mean nothing)"
        facts.append(f"weights: {meaningful}")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>anycapture: {name}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Attention maps of <code>{name}</code></h1>",
        f'<p class="meta">{html.escape(" · ".join(facts))}</p>',
    ]
    parts += [f'<p class="meta">Note: {html.escape(note)}</p>' for note in manifest.notes]
    parts += [
        f'<p class="meta skipped">Skipped: {html.escape(entry.reason)}</p>'
        for entry in manifest.skipped
    ]
    return parts


def _contents(images: list[str | None], by_image: dict[str | None, list[FigureEntry]]) -> str:
    items = [
        f'<li><a href="#image-{i}">{html.escape(_title(image))}</a> '
        f"({len(by_image[image])} figures)</li>"
        for i, image in enumerate(images)
    ]
    return f"<nav><b>Images</b><ol>{''.join(items)}</ol></nav>"


def _title(image: str | None) -> str:
    return "all images" if image is None else PurePosixPath(image).name


def _section(
    thumbs: _Thumbs,
    number: int,
    image: str | None,
    figures: list[FigureEntry],
    options: dict[str, Any],
) -> list[str]:
    parts = [f'<section id="image-{number}"><h2>{html.escape(_title(image))}</h2>']
    by_layer: dict[int | None, list[FigureEntry]] = defaultdict(list)
    for figure in figures:
        by_layer[figure.layer].append(figure)
    for layer in sorted(by_layer, key=lambda v: (v is not None, v if v is not None else -1)):
        group = by_layer[layer]
        heading = "every layer" if layer is None else f"layer {layer} ({group[0].layer_name})"
        parts.append(f'<h3>{html.escape(heading)}</h3><div class="figures">')
        parts += [_figure(thumbs, figure, options) for figure in group]
        parts.append("</div>")
    parts.append("</section>")
    return parts


def _figure(thumbs: _Thumbs, figure: FigureEntry, options: dict[str, Any]) -> str:
    full = _href(figure.path)
    caption = _caption(figure, options)
    try:
        shown, width, height = _thumbnail(thumbs, figure.path)
    except OSError:  # gone, or not a regular file: a link, no picture
        return (
            f'<figure class="single"><figcaption><b>{html.escape(figure.figure)}</b> · '
            f'{html.escape(caption)} · <a href="{full}">PNG</a></figcaption></figure>'
        )
    wide = _is_wide(width, height)
    alt = html.escape(caption, quote=True)
    return (
        f'<figure class="{"wide" if wide else "single"}"><a href="{full}">'
        f'<img src="{_href(shown)}" width="{width}" height="{height}" '
        f'alt="{alt}" loading="lazy" decoding="async"></a>'
        f"<figcaption><b>{html.escape(figure.figure)}</b> · {html.escape(caption)} · "
        f'<a href="{full}">full size PNG</a></figcaption></figure>'
    )


def _thumbnail(thumbs: _Thumbs, relative: str) -> tuple[str, int, int]:
    """The picture the page shows (a JPEG thumbnail, or the PNG when it is small)
    and its size.  Only a regular file is read (a link there is never followed)."""
    import stat

    from PIL import Image

    path = thumbs.out / relative
    if not stat.S_ISREG(path.lstat().st_mode):
        raise OSError(f"{relative} is not a regular file")
    with Image.open(path) as image:
        width, height = image.size
        limit = min(width, WIDE_THUMB_WIDTH if _is_wide(width, height) else THUMB_WIDTH)
        if width <= limit and path.stat().st_size <= SMALL_PNG:
            return relative, width, height
        size = (limit, max(1, round(height * limit / width)))
        small = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    thumb = (PurePosixPath(THUMBS) / relative).with_suffix(".jpg").as_posix()
    thumbs.write(Path(thumb), buffer.getvalue())
    thumbs.written.append(thumb)
    return thumb, size[0], size[1]


def _is_wide(width: int, height: int) -> bool:
    return width >= WIDE_FROM and width >= WIDE * height


def _caption(figure: FigureEntry, options: dict[str, Any]) -> str:
    """What the figure shows: layer, head, query, window, and the options of its kind."""
    bits = []
    if figure.layer is not None:
        bits.append(f"layer {figure.layer} ({figure.layer_name})")
    if figure.head is not None:
        bits.append("head mean" if figure.head == "mean" else f"head {figure.head}")
    if figure.query:
        bits.append(f"query patch ({figure.query[0]}, {figure.query[1]})")
    if figure.window:
        bits.append(f"window {figure.window[0]} of {figure.window[1]}")
    bits += _kind_options(figure.figure, options)
    bits += _kind_values(figure)
    return ", ".join(bits) or "all layers"


def _kind_values(figure: FigureEntry) -> list[str]:
    """A kind's own words for its numbers (distance, entropy...), when it has some."""
    from .kinds import KINDS

    kind = KINDS[figure.figure] if figure.figure in KINDS else None
    if kind is None or not figure.values:
        return []
    describe = kind.aggregate.caption if figure.image is None and kind.aggregate else None
    describe = describe or kind.caption
    return [describe(figure.values)] if describe is not None else []


def _kind_options(kind: str, options: dict[str, Any]) -> list[str]:
    from .kinds import KINDS

    if kind not in KINDS or not options:
        return []
    uses = {str(u) for u in KINDS[kind].uses}
    bits = []
    if "token" in uses:
        bits.append(f"prefix token {options.get('token', 0)}")
    if "threshold" in uses and options.get("threshold") is not None:
        bits.append(f"top {options['threshold']:.0%} of the mass")
    if "fusion" in uses:
        bits.append(f"{options.get('fusion', 'mean')} fusion")
    if "discard_ratio" in uses:
        bits.append(f"discard {options.get('discard_ratio', 0):g}")
    if "target_class" in uses:
        bits.append(f"class {options.get('target_class') or 'top1'}")
    if "scale" in uses:
        bits.append(f"{options.get('scale', 'shared')} colour scale")
    return bits
