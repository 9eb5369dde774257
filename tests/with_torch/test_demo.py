"""``--model demo``: the committed weights load and their attention finds the object."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("timm")


def test_demo_cls_attention_finds_the_cross() -> None:
    from PIL import Image

    import anycapture
    from anycapture.demo import GRID, WEIGHTS, build_demo, make_scene

    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 2_000_000
    model = build_demo()
    rng = np.random.default_rng(123)  # scenes the training never saw (it used seed 0)
    hits = 0
    for _ in range(20):
        scene, label = make_scene(rng)
        result = anycapture.attention_maps(model, Image.fromarray(scene))
        cls_to_patches = result["blocks.1.attn"][:, 0, 1:].mean(axis=0)  # head mean
        row, col = divmod(int(np.argmax(cls_to_patches)), GRID)
        target_row, target_col = divmod(label, GRID)
        hits += abs(row - target_row) <= 1 and abs(col - target_col) <= 1
    assert hits >= 18, f"CLS attention found the cross in only {hits} of 20 scenes"
