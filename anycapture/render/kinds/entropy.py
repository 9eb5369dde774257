"""``entropy``: attention entropy per layer and head, in nats: over the patch queries,
the entropy of the attention to the patch keys (prefix keys left out, weights
renormalised), averaged.  The dashed line is a uniform spread over the patches.
Manifest entry key ``entropy_nats``, a list per layer of per-head values.

One sheet per image (layer on x, one dot per head, the head mean as a line) and,
with two or more images, one for the run: means across images with their standard
deviation (``entropy_all_images.png``, values ``entropy_nats`` and ``..._sd``).
"""

from __future__ import annotations

from .head_statistic import statistic_kind

KIND = statistic_kind("entropy")
