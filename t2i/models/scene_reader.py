"""A scene reader: a small transformer over frozen MiniLM token states that fills a fixed set of
slots, each a group of objects (count, size, colour, shape), and names a relation between the
first two. What the classes mean is the shapes world's (t2i/text/scene_reading.py); the model only
knows how many each field has."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from t2i.config import check_sizes
from t2i.errors import InputError


@dataclass(frozen=True)
class ReaderConfig:
    text_dim: int = 384  # text encoder token state size
    width: int = 192
    num_heads: int = 4
    depth: int = 2  # self-attention layers over the tokens
    slot_depth: int = 2  # layers in which the slots attend to each other and to the tokens
    slots: int = 4  # groups of objects a reading can hold
    # classes of each field: count (0 is an empty slot), size (0: unsaid), colour (0: unsaid), shape, relation (0: none)
    counts: int = 5
    sizes: int = 3
    colors: int = 7
    shapes: int = 3
    relations: int = 3

    def __post_init__(self) -> None:
        check_sizes(self, at_least_1=("text_dim", "width", "num_heads", "depth", "slot_depth", "slots", "counts", "sizes", "colors", "shapes", "relations"))
        if self.width % self.num_heads:
            raise InputError(f"width {self.width} is not divisible by num_heads {self.num_heads}")


class SceneReader(nn.Module):
    """forward(tokens (B, T, text_dim), token_mask (B, T) bool) -> logits {"count", "size", "color",
    "shape": (B, slots, classes), "relation": (B, classes)}.

    The tokens pass `depth` pre-norm self-attention layers; then `slots` + 1 learned queries (one per
    slot and one for the relation) attend to each other and to the tokens for `slot_depth` layers
    (as DETR's object queries do), so two slots can agree which group each takes."""

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.project = nn.Linear(c.text_dim, c.width)
        self.encoder = nn.ModuleList(nn.TransformerEncoderLayer(c.width, c.num_heads, 4 * c.width, dropout=0.0, batch_first=True, norm_first=True)
                                     for _ in range(c.depth))
        self.queries = nn.Parameter(torch.randn(c.slots + 1, c.width) * 0.02)
        self.slot_layers = nn.ModuleList(nn.TransformerDecoderLayer(c.width, c.num_heads, 4 * c.width, dropout=0.0, batch_first=True, norm_first=True)
                                         for _ in range(c.slot_depth))
        self.norm = nn.LayerNorm(c.width)
        self.heads = nn.ModuleDict({"count": nn.Linear(c.width, c.counts), "size": nn.Linear(c.width, c.sizes),
                                    "color": nn.Linear(c.width, c.colors), "shape": nn.Linear(c.width, c.shapes)})
        self.relation = nn.Linear(c.width, c.relations)

    def forward(self, tokens: torch.Tensor, token_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pad = ~token_mask.bool()
        x = self.project(tokens)
        for layer in self.encoder:
            x = layer(x, src_key_padding_mask=pad)
        q = self.queries.expand(len(x), -1, -1)
        for layer in self.slot_layers:
            q = layer(q, x, memory_key_padding_mask=pad)
        q = self.norm(q)
        out = {name: head(q[:, :-1]) for name, head in self.heads.items()}
        out["relation"] = self.relation(q[:, -1])
        return out
