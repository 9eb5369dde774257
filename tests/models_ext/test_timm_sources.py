"""timm models with fused attention kept: the SDPA source's maps equal the unfused
local ``attn`` (what anycapture captured so far), outputs untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anycapture import capture
from anycapture.sources.sdpa import SdpaSource

timm = pytest.importorskip("timm")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8}),
        ("vit_small_patch14_reg4_dinov2", {"img_size": 28, "depth": 2}),
        ("deit_tiny_distilled_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    ],
)
def test_sdpa_source_equals_unfused_attn(name: str, kwargs: dict) -> None:
    from timm.layers.attention import Attention

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    x = torch.randn(2, 3, kwargs["img_size"], kwargs["img_size"])
    modules = [m for m in model.modules() if isinstance(m, Attention)]
    assert all(m.fused_attn for m in modules)
    with torch.inference_mode():
        plain = model(x)
        with SdpaSource(model) as source:
            captured = model(x)
        for module in modules:
            module.fused_attn = False
        with capture(Attention.forward, "attn") as cap:
            model(x)
    assert torch.equal(plain, captured)
    records = source.take()
    names = [n for n, m in model.named_modules() if isinstance(m, Attention)]
    assert [name for name, _ in records] == names
    unfused = cap.cache["Attention.forward.attn"]
    for (_, got), expected in zip(records, unfused, strict=True):
        assert np.abs(got - expected).max() <= 1e-5
