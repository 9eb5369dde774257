"""Capture sources: where a render's attention maps come from.

Each source has one small interface (:class:`CaptureSource`: ``start``, ``stop``,
``take``), can be tested alone and leaves no process-wide state behind once
stopped.  :class:`anycapture.attention.AttentionRecorder` picks the sources for a
model:

- :class:`LocalsSource`: the final value of a local in the functions of
  :class:`Site` s (timm-style ``attn`` locals, ``--capture``, or the names a model's
  own code gives ``@get_local``), composing with ``get_local`` and ``capture()``;
- :class:`MultiheadSource`: per-head weights of ``torch.nn.MultiheadAttention``,
  asked for with hooks, the caller's outputs unchanged;
- :class:`MhaSource`: the same weights computed beside each call from its inputs
  and the module's projections (fast path kept: outputs bit-identical);
- :class:`SdpaSource`: weights of every ``scaled_dot_product_attention`` call,
  computed beside it and attributed to the calling module (outputs bit-identical);
- :class:`SoftmaxSource`: ``softmax`` outputs that a matrix product then applies to
  values, in any family, named after the module that made them (outputs
  bit-identical): what closes the rest.
"""

from __future__ import annotations

from .base import CaptureSource, NotAttentionError, as_attention
from .locals import LocalsSource
from .mha import MhaSource
from .multihead import MultiheadSource
from .sdpa import SdpaSource
from .sites import Site, custom_sites, decorated_sites, find_sites
from .softmax import SoftmaxSource

__all__ = [
    "CaptureSource",
    "LocalsSource",
    "MhaSource",
    "MultiheadSource",
    "NotAttentionError",
    "SdpaSource",
    "Site",
    "SoftmaxSource",
    "as_attention",
    "custom_sites",
    "decorated_sites",
    "find_sites",
]
