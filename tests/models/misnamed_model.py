"""``@get_local('attention_map')`` on a function whose local is ``attn``, as a public
MRI model writes it: both seeds import this module and train with it (they fail only
once activated and called); anycapture must import it too, and render its attention
(found by the local ``attn``)."""

from __future__ import annotations

import torch
from torch import nn

from anycapture import get_local

DIM, HEADS, PATCH = 16, 2, 8


class MisnamedAttention(nn.Module):
    num_heads = HEADS

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, DIM * 3)

    @get_local("attention_map")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (C // HEADS) ** -0.5).softmax(dim=-1)
        return x + (attn @ v).transpose(1, 2).reshape(B, N, C)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.blocks = nn.Sequential(MisnamedAttention(), MisnamedAttention())
        self.pretrained_cfg = {
            "input_size": (3, 32, 32),
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.embed(images).flatten(2).transpose(1, 2)).mean(1)


def build() -> nn.Module:
    torch.manual_seed(0)
    return Net().eval()
