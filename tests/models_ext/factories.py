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


def sdpa_vit() -> Any:
    """A tiny ViT whose attention exists only inside F.scaled_dot_product_attention
    (as in the current DINOv2 code): 32 px input, 8 px patches, CLS + 4x4 grid."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()
            self.heads, self.qkv, self.proj = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch, tokens, dim = x.shape
            qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            x = F.scaled_dot_product_attention(q, k, v)
            return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))

    class Block(nn.Module):
        def __init__(self, dim: int, heads: int) -> None:
            super().__init__()
            self.norm, self.attn = nn.LayerNorm(dim), Attention(dim, heads)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.attn(self.norm(x))

    class SdpaViT(nn.Module):
        def __init__(self, dim: int = 32, heads: int = 2) -> None:
            super().__init__()
            self.embed = nn.Conv2d(3, dim, 8, 8)
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.blocks = nn.Sequential(Block(dim, heads), Block(dim, heads))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = self.embed(images).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1)
            return self.blocks(x)[:, 0]

    torch.manual_seed(0)
    return SdpaViT()
