"""Models outside timm and transformers: open_clip (two towers, its own preprocessing)
and torchvision's vit_b_16; maps against the modules' own weights, outputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from anycapture.loading import load_model
from anycapture.preprocess import Preprocessor
from anycapture.sources.mha import MhaSource

from .conftest import CAT, REPO

FACTORIES = REPO / "tests" / "models_ext" / "factories.py"


def _own_weights(model, x):
    """Each MultiheadAttention's weights as the module itself computes them when asked."""
    inputs = []

    def keep(module, args, kwargs):
        inputs.append((module, args, kwargs))

    handles = [
        m.register_forward_pre_hook(keep, with_kwargs=True)
        for m in model.modules()
        if isinstance(m, torch.nn.MultiheadAttention)
    ]
    with torch.inference_mode():
        model(x)
    for handle in handles:
        handle.remove()
    weights = []
    for module, args, kwargs in inputs:
        kwargs = {**kwargs, "need_weights": True, "average_attn_weights": False}
        with torch.inference_mode():
            weights.append(module(*args, **kwargs)[1].numpy())
    return weights


def _check_maps(model, x) -> list[tuple[str, np.ndarray]]:
    with torch.inference_mode():
        plain = model(x)
        with MhaSource(model) as source:
            captured = model(x)
    assert torch.equal(plain, captured)  # bit-identical: the fast path is kept
    records = source.take()
    expected = _own_weights(model, x)
    assert len(records) == len(expected) > 0
    for (_, got), want in zip(records, expected, strict=True):
        assert np.abs(got - want).max() <= 1e-5
    return records


def test_open_clip_image_tower_and_its_preprocessing() -> None:
    open_clip = pytest.importorskip("open_clip")
    loaded = load_model(f"{FACTORIES}:tiny_open_clip")
    model = loaded.module
    assert type(model).__name__ == "VisionTransformer"
    assert any("two-tower" in n and "`visual`" in n for n in loaded.notes)
    pre = Preprocessor.for_model(model)
    assert pre.describe()["source"] == "open_clip preprocess_cfg" and not pre.notes
    image = Image.open(CAT).convert("RGB")
    from .factories import TINY_OPEN_CLIP

    _, _, own = open_clip.create_model_and_transforms("ViT-B-32", **TINY_OPEN_CLIP)
    x = pre.tensor([pre.view(image)])
    assert torch.allclose(x, own(image)[None], atol=1e-6)  # vs timm's ImageNet: up to 2.67
    records = _check_maps(model, x)
    assert [name for name, _ in records] == [
        "transformer.resblocks.0.attn",
        "transformer.resblocks.1.attn",
    ]
    assert records[0][1].shape == (1, 2, 17, 17)


@pytest.mark.slow
def test_torchvision_vit_b_16() -> None:
    pytest.importorskip("torchvision")
    loaded = load_model(f"{FACTORIES}:vit_b_16")
    pre = Preprocessor.for_model(loaded.module)
    assert pre.describe()["source"] == "ImageNet defaults (assumed)"
    assert pre.notes and "--mean" in pre.notes[0]
    x = pre.tensor([pre.view(Image.open(CAT).convert("RGB"))])
    records = _check_maps(loaded.module, x)
    assert len(records) == 12 and records[0][1].shape == (1, 12, 197, 197)
