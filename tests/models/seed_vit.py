"""Seed-user models: code as Visualizer's and AnyCapture's demo notebooks write it.

``build`` is a small ViT whose ``Attention.forward`` is decorated
``@get_local('attn')`` exactly as in both seeds' demo models (a copy of timm's
vision_transformer with the decorator added); ``cnn`` decorates a feature map, which
is not attention and must be refused.
"""

from __future__ import annotations

import torch
from torch import nn

from anycapture import get_local

GRID = (4, 4)
PATCH = 8


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int = 2) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)

    @get_local("attn")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.grid_size = GRID
        self.patch_size = (PATCH, PATCH)
        self.proj = nn.Conv2d(3, dim, PATCH, PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    num_prefix_tokens = 1

    def __init__(self, dim: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(depth)])
        self.pretrained_cfg = {
            "input_size": (3, GRID[0] * PATCH, GRID[1] * PATCH),
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.blocks(x)[:, 0]


def build() -> nn.Module:
    torch.manual_seed(0)
    return VisionTransformer().eval()


class ConvNet(nn.Module):
    """A CNN whose decorated variable is a feature map, not attention."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pretrained_cfg = VisionTransformer().pretrained_cfg

    @get_local("feat")
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feat = self.conv(images)
        return feat.mean(dim=(2, 3))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return ConvNet().eval()
