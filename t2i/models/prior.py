"""unCLIP's diffusion prior: a causal transformer that predicts a clean CLIP image embedding.

The sequence, in order: the caption's encoded text tokens, the CLIP text embedding, the
timestep embedding, the noised image embedding and a learned query. Each position attends only
to earlier ones (and itself); the output at the query is the predicted *clean* embedding (x0),
as in DALL-E 2 section 2.2, rather than the noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from t2i.config import check_sizes
from t2i.errors import InputError
from t2i.nn.attention import TransformerBlock
from t2i.nn.embeddings import ScalarEmbedding


@dataclass(frozen=True)
class PriorConfig:
    embed_dim: int = 256  # CLIP embedding size
    text_dim: int = 384  # text encoder token state size
    width: int = 256
    depth: int = 6
    num_heads: int = 4
    max_tokens: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_sizes(self, at_least_1=("embed_dim", "text_dim", "width", "depth", "num_heads", "max_tokens"))
        if self.width % self.num_heads:
            raise InputError(f"width {self.width} is not divisible by num_heads {self.num_heads}")


class DiffusionPrior(nn.Module):
    """forward(x_t (B, E), t (B,) long, text_embed (B, E), tokens (B, T, text_dim), token_mask (B, T) bool,
    keep (B,) bool or None) -> predicted clean embedding (B, E).

    `keep` False drops the caption (tokens masked, text embedding replaced by a learned null)
    for classifier-free guidance.
    """

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        self.config = c = config
        self.token_proj = nn.Linear(c.text_dim, c.width)
        self.text_embed_proj = nn.Linear(c.embed_dim, c.width)
        self.null_text_embed = nn.Parameter(torch.zeros(c.embed_dim))
        self.time_embed = ScalarEmbedding(feature_dim=c.width, out_dim=c.width)
        self.x_proj = nn.Linear(c.embed_dim, c.width)
        self.query = nn.Parameter(torch.randn(c.width) * 0.02)
        self.pos = nn.Parameter(torch.randn(c.max_tokens + 4, c.width) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim=c.width, num_heads=c.num_heads, dropout=c.dropout) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, c.embed_dim)

    def forward(self, x_t, t, *, text_embed, tokens, token_mask, keep=None):
        c = self.config
        b, n_tok = tokens.shape[:2]
        if n_tok > c.max_tokens:
            raise ValueError(f"{n_tok} text tokens, this prior takes at most {c.max_tokens}")
        if keep is not None:
            text_embed = torch.where(keep[:, None], text_embed, self.null_text_embed.to(text_embed.dtype))
            token_mask = token_mask & keep[:, None]
        seq = torch.cat([
            self.token_proj(tokens),
            self.text_embed_proj(text_embed)[:, None],
            self.time_embed(t)[:, None],
            self.x_proj(x_t)[:, None],
            self.query.expand(b, 1, -1),
        ], dim=1)
        seq = seq + self.pos[: seq.shape[1]]
        mask = self._attention_mask(token_mask, seq.shape[1])
        for block in self.blocks:
            seq = block(seq, mask=mask)
        return self.out(self.norm(seq[:, -1]))

    @staticmethod
    def _attention_mask(token_mask: torch.Tensor, length: int) -> torch.Tensor:
        """(B, 1, L, L) bool: causal, padding keys hidden, every position sees itself."""
        b, n_tok = token_mask.shape
        causal = torch.ones(length, length, dtype=torch.bool, device=token_mask.device).tril()
        keys = torch.cat([token_mask, torch.ones(b, length - n_tok, dtype=torch.bool, device=token_mask.device)], dim=1)
        eye = torch.eye(length, dtype=torch.bool, device=token_mask.device)
        return ((causal & keys[:, None, :]) | eye)[:, None]
