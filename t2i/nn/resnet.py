"""Convolutional blocks of the UNet: residual blocks with FiLM conditioning, spatial attention, resampling."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2i.nn.attention import MultiHeadAttention


def group_norm(channels: int) -> nn.GroupNorm:
    groups = 32 if channels % 32 == 0 else 8 if channels % 8 == 0 else 1
    return nn.GroupNorm(groups, channels)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero the last layer of a residual branch so each block starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """(B, in_ch, H, W), emb (B, emb_dim) -> (B, out_ch, H, W); emb gives a per-channel scale and shift."""

    def __init__(self, *, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SpatialAttention(nn.Module):
    """Self-attention over the H·W positions, also attending to context tokens (GLIDE style:
    the context's keys and values are appended to the image's, so one attention op does both).

    x: (B, C, H, W); context: (B, M, context_dim) or None; context_mask: (B, M) bool, True = real.
    """

    def __init__(self, *, channels: int, head_dim: int, context_dim: int = 0, positions: int = 0) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.attn = MultiHeadAttention(dim=channels, num_heads=max(1, channels // head_dim), context_dim=context_dim)
        zero_init(self.attn.out)
        # positions = H·W > 0: a learned embedding of each position, added before attending, so a
        # query knows where it is (zero at init, like any part a warm start may add)
        self.pos = nn.Parameter(torch.zeros(positions, channels)) if positions else None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        seq = rearrange(self.norm(x), "b c h w -> b (h w) c")
        if self.pos is not None:
            if h * w != len(self.pos):
                raise ValueError(f"attention built for {len(self.pos)} positions got a {h}x{w} map")
            seq = seq + self.pos.to(seq.dtype)
        mask = None
        if context is not None and context_mask is not None:
            own = torch.ones(b, h * w, dtype=torch.bool, device=x.device)
            mask = torch.cat([own, context_mask], dim=1)[:, None, None, :]
        y = self.attn(seq, context=context, mask=mask)
        return x + rearrange(y, "b (h w) c -> b c h w", h=h, w=w)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
