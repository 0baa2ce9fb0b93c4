"""Multi-head attention (optionally with rotary positions, RoPE) and the pre-norm transformer block used by CLIP and the prior."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class MultiHeadAttention(nn.Module):
    """Self-attention over x, optionally also attending to extra context keys/values.

    x: (B, N, dim); context: (B, M, context_dim) or None; mask: bool, broadcastable to
    (B, 1, N, N [+ M]), True where attention is allowed. positions: (B, N) ints or None; given,
    two tokens that both have a position (>= 0) compare queries and keys rotated by it (RoPE), so
    what they see of each other depends on how far apart they stand, not where; a token at -1 and
    every context key compare unrotated, by content alone.
    """

    def __init__(self, *, dim: int, num_heads: int, context_dim: int = 0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.context_kv = nn.Linear(context_dim, 2 * dim) if context_dim else None
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, *, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        if context is not None:
            if self.context_kv is None:
                raise ValueError("this attention layer was built without context_dim")
            ck, cv = rearrange(self.context_kv(context), "b m (two h d) -> two b h m d", two=2, h=self.num_heads)
        if positions is not None:
            y = self._relative(q, k, v, positions, (ck, cv) if context is not None else None, mask)
        else:
            if context is not None:
                k, v = torch.cat([k, ck], dim=2), torch.cat([v, cv], dim=2)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))

    @staticmethod
    def _relative(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor, context: tuple[torch.Tensor, torch.Tensor] | None,
                  mask: torch.Tensor | None) -> torch.Tensor:
        """Attention whose token-token logits are rotary where both tokens are placed, plain otherwise."""
        scale = q.shape[-1] ** -0.5
        placed = positions >= 0
        both = (placed[:, :, None] & placed[:, None, :])[:, None]
        rotated = rotate(q, positions) @ rotate(k, positions).transpose(-1, -2)
        logits = torch.where(both, rotated, q @ k.transpose(-1, -2)) * scale
        if context is not None:
            logits = torch.cat([logits, q @ context[0].transpose(-1, -2) * scale], dim=-1)
            v = torch.cat([v, context[1]], dim=2)
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf"))
        return logits.softmax(dim=-1) @ v


def rotate(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE: (B, H, N, D) features rotated pairwise by angles positions (B, N) * base^(-2i/D), so a
    rotated query times a rotated key depends only on the difference of their positions."""
    half = x.shape[-1] // 2
    freqs = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = (positions.clamp(min=0).float()[:, None, :, None] * freqs)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + attn(norm(x)); x + mlp(norm(x)). (B, N, dim) -> (B, N, dim).
    With context_dim, the attention also reads a context sequence (B, M, context_dim)."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.0, context_dim: int = 0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim=dim, num_heads=num_heads, context_dim=context_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, *, mask: torch.Tensor | None = None, context: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), context=context, mask=mask, positions=positions)
        return x + self.mlp(self.norm2(x))
