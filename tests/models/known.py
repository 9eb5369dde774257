"""Test models given to the CLI as Python paths (``tests/models/known.py:build``)."""

from __future__ import annotations

import time

import timm
import torch
from torch import nn

from anycapture import get_local

GRID = (3, 5)  # non-square on purpose
PATCH = 16
TARGET = (2, 1)  # every query attends only to this patch


class PatchEmbed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.grid_size = GRID
        self.patch_size = (PATCH, PATCH)


class KnownAttention(nn.Module):
    """Attention whose map is known: every token attends to the TARGET patch."""

    num_heads = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        attn = torch.zeros(batch, self.num_heads, tokens, tokens)
        attn[..., 1 + TARGET[0] * GRID[1] + TARGET[1]] = 1.0
        return (attn @ x[:, None]).mean(dim=1)


class KnownModel(nn.Module):
    """One prefix token + a 3x5 grid; two layers of KnownAttention."""

    num_prefix_tokens = 1

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.blocks = nn.Sequential(KnownAttention(), KnownAttention())
        self.pretrained_cfg = {
            "input_size": (3, GRID[0] * PATCH, GRID[1] * PATCH),
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": (0.5, 0.5, 0.5),
            "std": (0.5, 0.5, 0.5),
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = 1 + GRID[0] * GRID[1]
        x = images.mean() * torch.ones(images.shape[0], tokens, 4)
        return self.blocks(x)


def build() -> nn.Module:
    return KnownModel()


class OffsetAttention(nn.Module):
    """Attention with hand-computable statistics (``offset()``).  Every patch query:
    head 0 puts half its weight on the CLS token and half on the patch one column to
    the right (wrapping), head 1 half on itself and half on the patch one row down
    (wrapping).  The CLS query attends to itself."""

    num_heads = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        rows, cols = GRID
        attn = torch.zeros(batch, self.num_heads, tokens, tokens)
        attn[:, :, 0, 0] = 1.0
        for r in range(rows):
            for c in range(cols):
                query = 1 + r * cols + c
                attn[:, 0, query, 0] += 0.5
                attn[:, 0, query, 1 + r * cols + (c + 1) % cols] += 0.5
                attn[:, 1, query, query] += 0.5
                attn[:, 1, query, 1 + ((r + 1) % rows) * cols + c] += 0.5
        return (attn @ x[:, None]).mean(dim=1)


class OffsetModel(KnownModel):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(OffsetAttention(), OffsetAttention())


def offset() -> nn.Module:
    return OffsetModel()


class SlowKnownModel(KnownModel):
    """KnownModel whose forwards after the second take a while, so a test can
    interrupt a batch mid-way on however fast a machine."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 2:
            time.sleep(0.5)
        return super().forward(images)


class BlockingKnownModel(KnownModel):
    """KnownModel whose seventh forward waits (up to 10 minutes) to be interrupted, so
    a Ctrl-C test lands mid-batch on any machine under any load (six images first, so
    the drawing workers' queue has delivered figures to the manifest)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        deadline = time.monotonic() + 600
        while self.calls > 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().forward(images)


def blocking() -> nn.Module:
    return BlockingKnownModel()


def slow() -> nn.Module:
    return SlowKnownModel()


def tiny_vit() -> nn.Module:
    """A small timm ViT on a non-square 32x48 input (2x3 grid), random weights."""
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=(32, 48), depth=2, num_classes=0
    )


class SeedAttention(nn.Module):
    """Seed style: the model's own code decorates its attention with @get_local."""

    num_heads = 1

    @get_local("attn_map")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn_map = torch.softmax(x @ x.transpose(-2, -1), dim=-1)[:, None]
        return (attn_map[:, 0] @ x).contiguous()


class SeedModel(nn.Module):
    num_prefix_tokens = 1

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.layer = SeedAttention()
        self.pretrained_cfg = KnownModel().pretrained_cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.flatten(2).mean(1)[:, : 1 + GRID[0] * GRID[1], None].repeat(1, 1, 3)
        return self.layer(x)


def seed() -> nn.Module:
    return SeedModel()


def not_a_module() -> str:
    return "oops"


def raises() -> nn.Module:
    raise RuntimeError("factory exploded")


class MHABlock(nn.Module):
    """A DETR-style block: nn.MultiheadAttention called without weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        return x + self.attn(y, y, y, need_weights=False)[0]


class MHAViT(nn.Module):
    """A ViT built on torch.nn.MultiheadAttention (no timm attention anywhere)."""

    num_prefix_tokens = 1

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        self.patch_embed.grid_size = GRID  # type: ignore[assignment]
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.Sequential(MHABlock(dim), MHABlock(dim))
        self.pretrained_cfg = KnownModel().pretrained_cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.blocks(x)[:, 0]


def mha_vit() -> nn.Module:
    torch.manual_seed(0)
    return MHAViT()


def tiny_classifier() -> nn.Module:
    """A small timm ViT with an ImageNet-sized head (1000 classes, so timm's ImageNet
    label names apply), 32x32 input, random weights."""
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2, num_classes=1000
    )
