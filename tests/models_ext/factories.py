"""Models given to ``load_model`` as Python paths (``tests/models_ext/factories.py:NAME``)."""

from __future__ import annotations

from typing import Any

TINY_OPEN_CLIP: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 99, "width": 32, "heads": 2, "layers": 1},
}


def tiny_open_clip() -> Any:
    """An open_clip CLIP (both towers), 32 px, 2 vision layers, random weights."""
    import open_clip
    import torch

    torch.manual_seed(0)
    return open_clip.create_model("ViT-B-32", **TINY_OPEN_CLIP)


def vit_b_16() -> Any:
    import torch
    from torchvision.models import vit_b_16

    torch.manual_seed(0)
    return vit_b_16()
