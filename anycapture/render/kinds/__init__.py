"""The built-in figure kinds, one module each; :data:`KINDS` is the registry.

Adding a kind: a module here defining ``KIND`` (see :mod:`anycapture.render.registry`)
and one line in ``BUILT_IN`` (its name and one-line help, in ``--figures`` order).
Modules load on first use, so ``anycapture --help`` imports none of them.
"""

from __future__ import annotations

from ..registry import FigureKinds

__all__ = ["BUILT_IN", "KINDS"]

BUILT_IN = {
    "head": "one head's token x token map",
    "heads": "every head and their average",
    "grid": "the query patch's attention over the image",
    "cls": "a prefix token's attention over the image, per head",
    "rollout": "attention rollout over all layers",
    "layers": "the query's attention in every layer, one sheet",
    "explain": "class relevance (Chefer et al. 2021) for --class",
    "distance": "mean attention distance per layer and head (px)",
    "entropy": "attention entropy per layer and head (nats)",
}

KINDS = FigureKinds(__name__, BUILT_IN)
