"""``distance``: mean attention distance per layer and head, in model-input pixels
(the ViT paper's Fig. 7): over the patch queries, the attention to the patch keys
(prefix keys left out, weights renormalised) times the distance between the patch
centres.  Manifest entry key ``distance_px``, a list per layer of per-head values
(None where a layer has no patch queries or is windowed).

One sheet per image (layer on x, one dot per head, the head mean as a line) and,
with two or more images, one for the run: means across images with their standard
deviation (``distance_all_images.png``, values ``distance_px`` and ``..._sd``).
"""

from __future__ import annotations

from .head_statistic import statistic_kind

KIND = statistic_kind("distance")
