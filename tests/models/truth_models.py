"""Models from public repositories' patterns that once drew figures that looked right
and were not (the "every figure tells the truth" issue).

* ``cross``: image self-attention blocks, each followed by a ``CrossAttention`` whose
  ``forward`` is decorated ``@get_local('attn')`` (image queries x 77 text keys), as a
  public language-to-robot-action repository writes it; timm metadata on the model.
* ``cross_only``: the cross-attention alone, no metadata: its layout cannot be told.
* ``gated``: a decorated local that is all zeros (a gate at initialisation).
* Every model has a generator method (``iter_blocks``), which must not stop the scan.
"""

from __future__ import annotations

import torch
from torch import nn

from anycapture import get_local

PATCH, DIM, HEADS, TEXT = 8, 16, 2, 77


class SelfAttention(nn.Module):
    num_heads = HEADS

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, DIM * 3)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (C // HEADS) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class CrossAttention(nn.Module):
    num_heads = HEADS

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(DIM, DIM)
        self.kv = nn.Linear(DIM, DIM * 2)

    @get_local("attn")
    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, HEADS, C // HEADS).transpose(1, 2)
        kv = self.kv(context).reshape(B, context.shape[1], 2, HEADS, C // HEADS)
        k, v = kv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (C // HEADS) ** -0.5).softmax(dim=-1)
        return (attn @ v).transpose(1, 2).reshape(B, N, C)


class PatchEmbed(nn.Module):
    def __init__(self, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid_size, self.patch_size = grid, (PATCH, PATCH)
        self.proj = nn.Conv2d(3, DIM, PATCH, PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = SelfAttention()
        self.cross = CrossAttention()

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.cross(x, text)


def _config(grid: tuple[int, int]) -> dict[str, object]:
    return {
        "input_size": (3, grid[0] * PATCH, grid[1] * PATCH),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
    }


class LanguageConditioned(nn.Module):
    """Image tokens (cls + patches) attend to each other, then to an instruction's 77
    text tokens (a learned embedding here: the input is the image alone)."""

    num_prefix_tokens = 1

    def __init__(self, grid: tuple[int, int] = (8, 4)) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(grid)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM))
        self.text = nn.Parameter(torch.randn(1, TEXT, DIM))
        self.blocks = nn.ModuleList(Block() for _ in range(2))
        self.pretrained_cfg = _config(grid)

    def iter_blocks(self):  # a generator method: the site scan must skip it
        yield from self.blocks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        text = self.text.expand(x.shape[0], -1, -1)
        for block in self.iter_blocks():
            x = block(x, text)
        return x[:, 0]


class CrossOnly(nn.Module):
    """Cross-attention alone, and nothing that says the image's token layout."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, DIM, PATCH, PATCH)
        self.text = nn.Parameter(torch.randn(1, TEXT, DIM))
        self.cross = CrossAttention()
        self.pretrained_cfg = _config((4, 4))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed(images).flatten(2).transpose(1, 2)
        return self.cross(x, self.text.expand(x.shape[0], -1, -1)).mean(1)


class GatedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(HEADS, 1, 1))  # zero at initialisation
        self.qk = nn.Linear(DIM, DIM * 2)

    @get_local("attn")
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k = self.qk(x).reshape(B, N, 2, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        attn = self.gate * torch.sigmoid(q @ k.transpose(-2, -1))
        return x + (attn.sum(1) @ x)


class Gated(nn.Module):
    num_prefix_tokens = 1

    def __init__(self, attention: type[nn.Module] = GatedAttention) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed((4, 4))
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM))
        self.blocks = nn.ModuleList(attention() for _ in range(2))
        self.pretrained_cfg = _config((4, 4))

    def iter_blocks(self):
        yield from self.blocks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.iter_blocks():
            x = block(x)
        return x[:, 0]


def cross() -> nn.Module:
    torch.manual_seed(0)
    return LanguageConditioned().eval()


def cross_only() -> nn.Module:
    torch.manual_seed(0)
    return CrossOnly().eval()


def gated() -> nn.Module:
    torch.manual_seed(0)
    return Gated().eval()
