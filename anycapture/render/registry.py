"""The figure-kind registry: one :class:`FigureKind` record per kind.

A record says everything the render run, the CLI, the notebook API and the
manifest need to know about a kind: its name, its :class:`Scope` (one figure per
layer, per image, or per run), which figure options it :class:`Uses`, its file
name, when it is skipped and why, and how the ``bare`` and ``paper`` styles (and
the notebook) draw it.

How to add a kind
-----------------
1. Write ``anycapture/render/kinds/<name>.py`` defining ``KIND = FigureKind(...)``.
   Drawing functions (``bare``, ``paper``) must be module-level ``def`` functions:
   worker processes (``--jobs``) receive them by reference (pickle), never lambdas.
2. Add one line ``"<name>": "<one-line help>"`` to ``BUILT_IN`` in
   ``anycapture/render/kinds/__init__.py``.  The CLI's ``--figures`` help, its check
   of kind names, the notebook's ``figure()`` and the run all read the registry.

A kind registered at run time (``KINDS.register(kind)``, e.g. in a test or a
plug-in) works the same, as long as its drawing functions can be pickled.

Scopes and payloads
-------------------
- ``Scope.LAYER``: drawn for each selected layer of each image from a
  :class:`~anycapture.render.request.FigureRequest` of that layer; ``skip`` may
  return a reason (noted in the manifest) to leave a layer out.
- ``Scope.IMAGE``: drawn once per image; the request carries the last layer as
  ``maps`` and every layer in ``all_layers``.
- ``Scope.RUN``: one aggregate figure per run.  ``collect(state, request)`` is
  called in the main process with each image's request (``state`` starts as
  None) and returns the new state; after the last image, ``file_name``, ``bare``
  and ``paper`` receive that state instead of a request.  Keep the state small
  (numbers per image, not maps).

Companions and model passes
---------------------------
- ``aggregate``: a ``Scope.RUN`` kind drawn beside a per-image kind when the run
  has at least two images (``distance`` and ``entropy``: mean and spread across
  images); it collects the same requests.
- ``model_pass(batch)``: for kinds that need the model itself (``explain``: gradients).
  Called once per forward batch with a :class:`ModelBatch`; returns one picklable
  value per image, which the kind's requests carry as ``extra``.  Such kinds cannot
  be drawn from saved maps (refused in one line).
- ``caption(values)``: the HTML index's caption text from the entry's ``values``.

Extra numbers in the manifest
-----------------------------
A drawing function returns PNG bytes, or :class:`Drawn` (PNG bytes plus
``values``, a JSON-able mapping); ``values`` go into the figure's manifest entry
under ``"values"``.  Raise :class:`NotApplicable` when a figure does not apply to
this model or image: the run notes the reason and goes on.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..errors import AnycaptureError

if TYPE_CHECKING:
    import numpy as np

    from ..layout import TokenLayout

__all__ = [
    "Drawing",
    "Drawn",
    "FigureKind",
    "FigureKinds",
    "LayerView",
    "ModelBatch",
    "NotApplicable",
    "Scope",
    "Uses",
]


class NotApplicable(AnycaptureError):
    """This figure does not apply to this model or image; the message says why."""


class Scope(StrEnum):
    LAYER = "layer"  # one figure per selected layer of each image
    IMAGE = "image"  # one figure per image, from all its layers
    RUN = "run"  # one figure per run, from every image


class Uses(StrEnum):
    """Figure options a kind reads; ``head`` and ``query`` are recorded in its
    manifest entries (None for kinds that do not use them)."""

    HEAD = "head"
    QUERY = "query"
    TOKEN = "token"
    THRESHOLD = "threshold"
    FUSION = "fusion"
    DISCARD_RATIO = "discard_ratio"
    TARGET_CLASS = "target_class"
    SCALE = "scale"  # a sheet of panels: --scale shared|each


@dataclass(frozen=True)
class Drawn:
    """A drawing with numbers for the manifest entry (``"values"``)."""

    png: bytes
    values: Mapping[str, Any]


Drawing = bytes | Drawn


@dataclass(frozen=True)
class LayerView:
    """What a per-layer skip rule sees: one layer of one image."""

    layer: str
    maps: np.ndarray  # (heads, Q, N)
    layout: TokenLayout | None  # None: the tokens do not fit the model's layout
    window: tuple[int, int] | None  # (shown, count) for windowed layers


@dataclass(frozen=True)
class ModelBatch:
    """One forward batch, as a kind's ``model_pass`` sees it."""

    model: Any  # torch.nn.Module, in eval mode
    inputs: Any  # (B, 3, H, W) tensor on the model's device
    sites: Sequence[Any]  # the recorder's attention sites
    layout: TokenLayout
    options: Any  # the run's FigureOptions
    notes: list[str]  # one-line notes for the run (appended to, deduplicated by the run)


def never_skip(_view: LayerView) -> str:
    return ""


@dataclass(frozen=True)
class FigureKind:
    """One figure kind.

    Attributes:
        name: the ``--figures`` name, also the manifest's ``figure``.
        scope: per layer, per image or per run.
        uses: the figure options it reads.
        file_name: the PNG's name inside the image's folder (for ``Scope.RUN``,
            inside ``--out``), from the request (or the collected state).
        bare, paper: draw the figure in that style; module-level functions.
        notebook: a fresh matplotlib Figure for the notebook API.
        image_wide: needs attention over the whole image: skipped on windowed
            layers and on layers whose tokens do not fit the layout.
        skip: a further per-layer rule: the reason to skip, or "".
        collect: ``Scope.RUN`` only: fold one image's request into the state.
        aggregate: a ``Scope.RUN`` companion drawn when the run has 2+ images.
        model_pass: computes, per forward batch, what the kind needs from the model.
        caption: the HTML caption from the manifest entry's ``values``.
    """

    name: str
    scope: Scope
    uses: frozenset[Uses]
    file_name: Callable[[Any], str]
    bare: Callable[[Any], Drawing]
    paper: Callable[[Any], Drawing]
    notebook: Callable[[Any], Any] | None = None
    image_wide: bool = True
    skip: Callable[[LayerView], str] = never_skip
    collect: Callable[[Any, Any], Any] | None = None
    aggregate: FigureKind | None = None
    model_pass: Callable[[ModelBatch], list[Any]] | None = None
    caption: Callable[[Mapping[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        if (self.scope is Scope.RUN) != (self.collect is not None):
            raise ValueError(f"figure kind {self.name}: collect is for Scope.RUN kinds only")
        if self.aggregate is not None and self.aggregate.scope is not Scope.RUN:
            raise ValueError(f"figure kind {self.name}: its aggregate must be a Scope.RUN kind")

    def draw_function(self, style: str) -> Callable[[Any], Drawing]:
        return self.paper if style == "paper" else self.bare

    def skip_reason(self, view: LayerView) -> str:
        """Why this layer gets no figure of this kind ("" to draw it)."""
        if self.image_wide:
            tokens = view.maps.shape[-1]
            if view.window is not None and view.window[1] > 1:
                return (
                    f"{view.layer} uses windowed attention ({tokens} tokens per window, "
                    f"{view.window[1]} windows): a {self.name} figure needs image-wide "
                    f"attention, so only head and heads are drawn there (window "
                    f"{view.window[0]}; pick with --window)"
                )
            if view.layout is None and view.maps.shape[-2] == tokens:
                return (
                    f"{view.layer}: {tokens} tokens do not fit the model's token layout; "
                    f"{self.name} skipped"
                )
        if view.layout is None and view.maps.shape[-2] != view.maps.shape[-1]:
            return not_the_image_keys(view.layer, view.maps.shape[-2], view.maps.shape[-1])
        return self.skip(view)


def not_the_image_keys(layer: str, queries: int, keys: int) -> str:
    """Why a layer whose keys are not the image's tokens gets no figure: a layout made
    from its keys would be made up (77 text tokens drawn as "5 prefix + 12x6")."""
    return (
        f"{layer}: {queries} queries x {keys} keys, and the keys are not the image's "
        "tokens (cross-attention, or keys pooled by spatial reduction): left out"
    )


class FigureKinds:
    """Kinds by name: built-in ones load on first use (their modules import numpy
    and Pillow, which ``--help`` must not pay for), others are registered."""

    def __init__(self, package: str, built_in: Mapping[str, str]) -> None:
        self._package = package
        self._help = dict(built_in)
        self._loaded: dict[str, FigureKind] = {}

    def register(self, kind: FigureKind, help_text: str = "") -> None:
        if kind.name in self._help:
            raise ValueError(f"figure kind {kind.name!r} is already registered")
        self._help[kind.name] = help_text
        self._loaded[kind.name] = kind

    def unregister(self, name: str) -> None:
        """Remove a kind registered at run time (tests)."""
        self._help.pop(name)
        self._loaded.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._help)

    def help(self) -> Mapping[str, str]:
        return dict(self._help)

    def __contains__(self, name: object) -> bool:
        return name in self._help

    def __iter__(self) -> Iterator[FigureKind]:
        return (self[name] for name in self._help)

    def __getitem__(self, name: str) -> FigureKind:
        kind = self._loaded.get(name)
        if kind is None:
            if name not in self._help:
                raise KeyError(name)
            kind = importlib.import_module(f"{self._package}.{name}").KIND
            self._loaded[name] = kind
        return kind
