"""Typed options, one frozen dataclass per concern, each checking itself.

- :class:`CaptureOptions`: how the model is loaded and what is captured.
- :class:`FigureOptions`: what a figure shows and how it looks (the notebook's
  ``figure()`` takes the same fields).
- :class:`RunOptions`: which figures a render run draws and how it writes them.
- :class:`RenderOptions`: a figure and a run choice together (checks across both).

The CLI builds them with keyword arguments; the notebook API builds the same
objects, so both reject bad values the same way: :class:`~anycapture.errors.UsageError`
with one line naming the option and the fix.  A new option is a field here (with
its check) and a parameter in the CLI.  Nothing heavy is imported at module level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import UsageError

MAX_IMAGE_SIDE = 1024  # pixels a side of the model input (SAM and ViT-H/14 at 1024 fit)

__all__ = [
    "CaptureOptions",
    "FigureOptions",
    "Fusion",
    "RenderOptions",
    "RunOptions",
    "Scale",
    "Style",
    "Upsample",
    "parse_pair",
]

ALL_LAYERS = "all"


class Style(StrEnum):
    """``paper``: an annotated figure; ``bare``: the picture alone at input resolution."""

    PAPER = "paper"
    BARE = "bare"


class Upsample(StrEnum):
    """How patch weights are resized onto the image (Pillow resampling)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


class Fusion(StrEnum):
    """How rollout fuses the heads of a layer."""

    MEAN = "mean"
    MAX = "max"
    MIN = "min"


class Scale(StrEnum):
    """Sheets of panels (heads, cls, layers): one colour scale for all, or one each."""

    SHARED = "shared"
    EACH = "each"


def _choice(options: object, name: str, enum: type[StrEnum], flag: str) -> None:
    """Turn a plain string field into its enum member, or fail naming the choices."""
    value = getattr(options, name)
    try:
        member = enum(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise UsageError(f"{flag} {value!r}: choose {_or(choices)}") from None
    object.__setattr__(options, name, member)


def _or(choices: str) -> str:
    head, _, last = choices.rpartition(", ")
    return f"{head} or {last}" if head else last


def _check_class(value: str | int | None) -> None:
    """``--class``: an index, topK or a label name (checked against the model's names
    once it is loaded)."""
    if value is None:
        return
    text = str(value).strip()
    _require(bool(text), "--class must be a class index, a label name, or top1/top3")
    if text.lower().startswith("top") and text[3:].isdigit():
        _require(1 <= int(text[3:]) <= 10, f"--class {text}: topK takes K from 1 to 10")
    elif text.lstrip("-").isdigit():
        _require(int(text) >= 0, f"--class {text} must be 0 or more")


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    return list(value) if isinstance(value, tuple) else value


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(message)


@dataclass(frozen=True)
class CaptureOptions:
    """Loading the model and finding what to capture (``render`` and ``sites``)."""

    pretrained: bool = True
    checkpoint: Path | None = None
    img_size: tuple[int, int] | None = None  # (H, W)
    capture: str | None = None  # 'package.module:Class.method:variable'
    device: str = "cpu"
    # preprocessing overrides (None: the model's own, else ImageNet defaults with a note)
    mean: tuple[float, ...] | None = None  # R, G, B
    std: tuple[float, ...] | None = None  # R, G, B
    resize: str | None = None  # crop (shorter side, centre crop) or squash (exact size)
    dtype: str | None = None  # float32, float16, bfloat16 (None: the model's own)

    def __post_init__(self) -> None:
        if self.img_size is not None:
            height, width = self.img_size
            _require(height > 0 and width > 0, f"--img-size {height},{width} must be positive")
            _require(
                max(height, width) <= MAX_IMAGE_SIDE,
                f"--img-size {height},{width} is over {MAX_IMAGE_SIDE} pixels a side: every "
                "layer's maps grow with the fourth power of the side (8 GB at 1600x1600 for "
                f"a ViT-S/16); use at most {MAX_IMAGE_SIDE}",
            )
        _require(bool(self.device.strip()), "--device must name a torch device, e.g. cpu")
        _require(
            self.device.split(":")[0] != "meta",
            "--device meta holds no data to draw: use cpu, cuda or mps",
        )
        for flag, value in (("--mean", self.mean), ("--std", self.std)):
            _require(
                value is None or len(value) == 3,
                f"{flag} needs three values R,G,B, e.g. 0.5,0.5,0.5",
            )
        for flag, value in (("--mean", self.mean), ("--std", self.std)):
            _require(
                value is None or all(math.isfinite(v) for v in value),
                f"--{flag.strip('-')} {','.join(map(str, value or ()))} must be finite numbers, "
                "e.g. 0.5,0.5,0.5",
            )
        _require(
            self.std is None or min(self.std) > 0,
            "--std values must be positive, e.g. 0.229,0.224,0.225",
        )
        _require(
            self.resize in (None, "crop", "squash"),
            f"--resize {self.resize!r}: choose crop or squash",
        )
        _require(
            self.dtype in (None, "float32", "float16", "bfloat16"),
            f"--dtype {self.dtype!r}: choose float32, float16 or bfloat16",
        )


@dataclass(frozen=True)
class FigureOptions:
    """What one figure shows and how it looks.

    ``head`` None means the mean over heads; ``query`` None means the centre patch.
    """

    head: int | None = 0
    query: tuple[int, int] | None = None  # (row, col) of the query patch
    token: int = 0  # prefix token for cls and rollout (0 = CLS)
    threshold: float | None = None  # cls: keep the patches holding this share of the mass
    fusion: Fusion = Fusion.MEAN
    discard_ratio: float = 0.0
    style: Style = Style.PAPER
    cmap: str = "viridis"
    alpha: float = 0.6
    upsample: Upsample = Upsample.BILINEAR
    target_class: str | None = None  # explain: an index, a label name or topK (None: top1)
    scale: Scale = Scale.SHARED

    def __post_init__(self) -> None:
        _check_class(self.target_class)
        _choice(self, "style", Style, "--style")
        _choice(self, "scale", Scale, "--scale")
        _choice(self, "upsample", Upsample, "--upsample")
        _choice(self, "fusion", Fusion, "--fusion")
        _require(
            isinstance(self.alpha, int | float) and 0.0 <= self.alpha <= 1.0,
            f"--alpha {self.alpha} must be between 0 and 1",
        )
        _require(
            0.0 <= self.discard_ratio < 1.0,
            f"--discard-ratio {self.discard_ratio} must be in [0, 1)",
        )
        _require(
            self.threshold is None or 0.0 < self.threshold <= 1.0,
            f"--threshold {self.threshold} must be in (0, 1]",
        )
        _require(self.token >= 0, f"--token {self.token} must be 0 or more")
        _require(
            self.head is None or (isinstance(self.head, int) and self.head >= 0),
            f"--head {self.head!r} must be 0 or more, or 'mean' (None)",
        )
        from .render.colour import colormap_lut

        try:
            colormap_lut(self.cmap)  # unknown names fail here, before any model loads
        except ValueError as exc:
            raise UsageError(f"--cmap: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The options as the manifest records them (enums as their names)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_kwargs(cls, **values: Any) -> FigureOptions:
        """Build from keyword arguments, naming any that is not an option."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            choices = ", ".join(sorted(known))
            raise UsageError(f"unknown figure option {', '.join(unknown)}; choose from {choices}")
        return cls(**values)


@dataclass(frozen=True)
class RunOptions:
    """One render run: the figure kinds, the layers, batching, workers and extra outputs.

    ``layer`` is an index (negative from the end) or ``"all"``; ``jobs`` 0 draws in
    this process.
    """

    figures: tuple[str, ...] = ("head", "heads", "grid")
    layer: int | str = -1
    query_pixel: tuple[int, int] | None = None  # (x, y) in the original image
    window: int | None = None  # windowed layers: which window (default: the middle one)
    batch_size: int = 8
    jobs: int = 0
    save_maps: bool = False
    maps_float16: bool = False
    html: bool = False
    decode_workers: int | None = None  # DataLoader workers reading images; None: auto
    viewer: bool = False  # viewer.html, built from the saved maps (so it saves them)

    def __post_init__(self) -> None:
        from .render.kinds import KINDS

        if self.viewer:  # the explorer is built from the maps files, on every run path
            object.__setattr__(self, "save_maps", True)

        object.__setattr__(self, "figures", tuple(dict.fromkeys(self.figures)))  # each once
        spec = ",".join(self.figures)
        unknown = [k for k in self.figures if k not in KINDS]
        _require(
            bool(self.figures) and not unknown,
            f"--figures {spec!r}: unknown kind {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(KINDS.names())}",
        )
        if self.layer != ALL_LAYERS:
            try:
                object.__setattr__(self, "layer", int(self.layer))
            except ValueError:
                raise UsageError(f"--layer {self.layer!r} must be an integer or 'all'") from None
        _require(self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1")
        _require(self.jobs >= 0, f"--jobs {self.jobs} must be 0 (draw in this process) or more")
        _require(
            self.decode_workers is None or self.decode_workers >= 0,
            f"--decode-workers {self.decode_workers} must be 0 (read in this process) or more",
        )

    @property
    def all_layers(self) -> bool:
        return self.layer == ALL_LAYERS


@dataclass(frozen=True)
class RenderOptions:
    """A render run's figure and run options, checked together."""

    figure: FigureOptions = field(default_factory=FigureOptions)
    run: RunOptions = field(default_factory=RunOptions)

    def __post_init__(self) -> None:
        _require(
            self.figure.query is None or self.run.query_pixel is None,
            "give --query or --query-pixel, not both",
        )

    def ignored(self) -> list[str]:
        """A note per figure option given a value but read by none of the chosen kinds
        (``--threshold`` with only ``head`` figures), so it is not silently dropped."""
        from .render.kinds import KINDS
        from .render.registry import Uses

        default = FigureOptions()
        used = {use for name in self.run.figures for use in KINDS[name].uses}
        given = [
            (use, f"--{'class' if use is Uses.TARGET_CLASS else use.value.replace('_', '-')}")
            for use in Uses
            if getattr(self.figure, use.value) != getattr(default, use.value)
        ]
        if self.run.query_pixel is not None:
            given.append((Uses.QUERY, "--query-pixel"))
        chosen = ", ".join(self.run.figures)
        return [
            f"{flag} has no effect on {chosen} (it is read by "
            f"{', '.join(n for n in KINDS.names() if use in KINDS[n].uses)})"
            for use, flag in given
            if use not in used
        ]


def parse_pair(value: str | None, option: str, names: str) -> tuple[int, int] | None:
    """'A,B' -> (A, B) for --query, --query-pixel and --img-size."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",")
    try:
        first, second = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"{option} {value!r} must be two integers {names}, e.g. 7,7") from None
    return first, second
