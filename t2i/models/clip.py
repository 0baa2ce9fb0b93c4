"""A small CLIP: a trainable ViT image encoder and a trainable head over the frozen text encoder.

Both map to a shared unit-norm embedding space, trained with the symmetric contrastive loss of
Radford et al. 2021 with a learned temperature. The text head is a small transformer over the
frozen per-token states (not just the pooled vector) so that word order and attribute binding
("a red circle and a blue square") survive into the embedding.

Optionally (match_depth > 0) a matching head as in ALBEF/BLIP's image-text matching: a small
transformer that reads the caption's tokens and attends to the image's patch tokens, and gives
one logit for "this caption describes this image". Two separate embeddings compared by a cosine
cannot easily tell "a circle left of a square" from its mirror image; a head that looks at both
together can, in principle. What ours learned on shapes is in docs/results/unclip.md (counts yes, relations
not yet).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from t2i.config import check_sizes
from t2i.errors import InputError
from t2i.nn.attention import TransformerBlock


def kept_length(token_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool -> (B,) the number of positions up to each row's last kept token (0 if none)."""
    at = torch.arange(1, token_mask.shape[1] + 1, device=token_mask.device)
    return (at * token_mask).amax(dim=1) if token_mask.shape[1] else token_mask.new_zeros(len(token_mask), dtype=torch.long)


@dataclass(frozen=True)
class CLIPConfig:
    image_size: int = 32
    patch_size: int = 4
    image_width: int = 192
    image_depth: int = 4
    image_heads: int = 3
    text_dim: int = 384
    text_width: int = 192
    text_depth: int = 2
    text_heads: int = 3
    max_tokens: int = 32
    embed_dim: int = 256
    match_depth: int = 0  # > 0: an image-text matching head of this many blocks (text_width wide)
    # False: the head adds no position of its own to the caption's tokens, whose MiniLM states
    # already say where each word stands among the others, so a few words before a caption
    # ("show me ...") leave what it binds as it was
    match_text_positions: bool = True
    # True: the head's words see each other by how far apart they stand (rotary attention), so
    # "red" binds to the "circle" after it wherever the pair stands; its query and the image
    # tokens compare with words by content alone
    match_rotary: bool = False

    def __post_init__(self) -> None:
        check_sizes(self, at_least_1=("image_size", "patch_size", "image_width", "image_depth", "image_heads", "text_dim", "text_width", "text_depth",
                                      "text_heads", "max_tokens", "embed_dim"), at_least_0=("match_depth",))
        if self.image_size % self.patch_size:
            raise InputError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")


class CLIP(nn.Module):
    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = c = config
        n_patches = (c.image_size // c.patch_size) ** 2
        self.patch_embed = nn.Linear(3 * c.patch_size**2, c.image_width)
        self.image_cls = nn.Parameter(torch.randn(c.image_width) * 0.02)
        self.image_pos = nn.Parameter(torch.randn(n_patches + 1, c.image_width) * 0.02)
        self.image_blocks = nn.ModuleList(TransformerBlock(dim=c.image_width, num_heads=c.image_heads) for _ in range(c.image_depth))
        self.image_norm = nn.LayerNorm(c.image_width)
        self.image_proj = nn.Linear(c.image_width, c.embed_dim, bias=False)

        self.text_in = nn.Linear(c.text_dim, c.text_width)
        self.text_pos = nn.Parameter(torch.randn(c.max_tokens, c.text_width) * 0.02)
        self.text_blocks = nn.ModuleList(TransformerBlock(dim=c.text_width, num_heads=c.text_heads) for _ in range(c.text_depth))
        self.text_norm = nn.LayerNorm(c.text_width)
        self.text_proj = nn.Linear(c.text_width + c.text_dim, c.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as CLIP starts
        if c.match_depth:
            self.match_in = nn.Linear(c.text_dim, c.text_width)
            self.match_query = nn.Parameter(torch.randn(c.text_width) * 0.02)
            # Word and patch positions of the head's own, at unit scale rather than the towers'
            # 0.02: matching "a circle left of a square" compares where a word sits with where a
            # patch sits, and from 0.02 that comparison never starts (a toy of mirrored two-colour
            # scenes stays at chance; at unit scale it is solved in a few hundred steps).
            self.match_pos = nn.Parameter(torch.randn(c.max_tokens + 1, c.text_width))
            self.match_image_pos = nn.Parameter(torch.randn(n_patches + 1, c.image_width))
            self.match_pixels = nn.Linear(3 * c.patch_size**2, c.image_width)
            self.match_blocks = nn.ModuleList(TransformerBlock(dim=c.text_width, num_heads=c.text_heads, context_dim=c.image_width) for _ in range(c.match_depth))
            self.match_norm = nn.LayerNorm(c.text_width)
            self.match_out = nn.Linear(c.text_width, 1)

    @property
    def has_match_head(self) -> bool:
        return self.config.match_depth > 0

    @property
    def scale(self) -> torch.Tensor:
        """The learned logit scale exp(logit_scale), at most 100 (temperature floor 0.01, as CLIP)."""
        return self.logit_scale.clamp(max=4.6052).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, embed_dim) unit norm; any H = W is resized to image_size."""
        return self.embed_image_tokens(self.image_tokens(images))

    def embed_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """image_tokens(images) -> (B, embed_dim) unit norm, from the class token."""
        return F.normalize(self.image_proj(tokens[:, 0]), dim=-1)

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, 1 + patches, image_width): the normalised class and patch tokens."""
        x = self.patch_embed(self._patches(images))
        x = torch.cat([self.image_cls.expand(len(x), 1, -1), x], dim=1) + self.image_pos
        for block in self.image_blocks:
            x = block(x)
        return self.image_norm(x)

    def _patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), any H = W -> (B, patches, 3 * patch_size**2) at image_size."""
        c = self.config
        if images.shape[-1] != c.image_size:
            images = F.interpolate(images, size=(c.image_size, c.image_size), mode="area" if images.shape[-1] > c.image_size else "bilinear")
        return rearrange(images, "b c (h p) (w q) -> b (h w) (c p q)", p=c.patch_size, q=c.patch_size)

    def _check_length(self, tokens: torch.Tensor) -> None:
        if tokens.shape[1] > self.config.max_tokens:
            raise ValueError(f"{tokens.shape[1]} text tokens, this CLIP takes at most {self.config.max_tokens}")

    def encode_text(self, tokens: torch.Tensor, token_mask: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """Frozen encoder output (tokens (B, T, 384), mask (B, T), pooled (B, 384)) -> (B, embed_dim) unit norm."""
        self._check_length(tokens)
        x = self.text_in(tokens.float()) + self.text_pos[: tokens.shape[1]]
        eye = torch.eye(tokens.shape[1], dtype=torch.bool, device=tokens.device)
        mask = (token_mask[:, None, :] | eye)[:, None]
        for block in self.text_blocks:
            x = block(x, mask=mask)
        m = token_mask[..., None].to(x.dtype)
        mean = (self.text_norm(x) * m).sum(1) / m.sum(1).clamp(min=1)
        return F.normalize(self.text_proj(torch.cat([mean, pooled.float()], dim=-1)), dim=-1)

    def match_logits(self, images: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor, *, image_tokens: torch.Tensor | None = None,
                     shift: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] and frozen text tokens (B, T, 384), mask (B, T) -> (B,)
        logits that each caption describes its image. image_tokens: image_tokens(images), if at hand.
        shift (B,) ints >= 0: read each caption's tokens at positions moved that far along (training);
        a caption's kept tokens must still end by max_tokens, its padding goes to the last position."""
        if not self.has_match_head:
            raise ValueError("this CLIP has no matching head (match_depth = 0)")
        self._check_length(tokens)
        x = torch.cat([self.match_query.expand(len(tokens), 1, -1), self.match_in(tokens.float())], dim=1)
        positions = torch.arange(tokens.shape[1] + 1, device=tokens.device)
        if shift is not None:
            end = shift + kept_length(token_mask)
            if int(shift.min()) < 0 or int(end.max()) > self.config.max_tokens:
                raise ValueError(f"shifts {shift.tolist()} take a caption's tokens past position {self.config.max_tokens}")
            moved = positions[1:] + shift[:, None]
            positions = torch.cat([torch.zeros_like(shift[:, None]), moved.clamp(max=self.config.max_tokens)], dim=1)
        if self.config.match_text_positions:
            x = x + self.match_pos[positions]
        else:
            x = torch.cat([x[:, :1] + self.match_pos[0], x[:, 1:]], dim=1)
        if image_tokens is None:
            image_tokens = self.image_tokens(images)
        # the tower's tokens carry what CLIP saw, blurred across the image by its attention; the
        # head's own embedding of each patch's pixels says exactly what is where
        pixels = F.pad(self.match_pixels(self._patches(images)), (0, 0, 1, 0))
        context = image_tokens + pixels + self.match_image_pos
        keep = torch.cat([torch.ones_like(token_mask[:, :1]), token_mask], dim=1)
        # every query reads the kept text tokens and every image token
        mask = torch.cat([keep, torch.ones(len(keep), context.shape[1], dtype=torch.bool, device=keep.device)], dim=1)[:, None, None]
        placed = None  # rotary: the words at their places, the query at none (-1)
        if self.config.match_rotary:
            placed = torch.cat([torch.full_like(positions[..., :1], -1), positions[..., 1:]], dim=-1).expand(len(x), -1)
        for block in self.match_blocks:
            x = block(x, mask=mask, context=context, positions=placed)
        return self.match_out(self.match_norm(x[:, 0])).squeeze(-1)

    def match_loss(self, images: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor, matches: torch.Tensor, *, image_tokens: torch.Tensor | None = None,
                   shift: torch.Tensor | None = None) -> torch.Tensor:
        """Binary cross-entropy of match_logits against matches (B,) bool, each class weighted half."""
        logits = self.match_logits(images, tokens, token_mask, image_tokens=image_tokens, shift=shift)
        loss = F.binary_cross_entropy_with_logits(logits, matches.float(), reduction="none")
        return 0.5 * (loss[matches].mean() + loss[~matches].mean())

    def contrastive_loss(self, image_embed: torch.Tensor, text_embed: torch.Tensor, same: torch.Tensor | None = None,
                         negative_embed: torch.Tensor | None = None, negative_same: torch.Tensor | None = None) -> torch.Tensor:
        """Symmetric InfoNCE over a batch of matching pairs. `same` (B, B) bool marks other pairs
        that are also true matches (two images of one caption), which are not counted as negatives.

        negative_embed (N, E): extra captions that match no image (hard negatives, NegCLIP),
        added as columns of the image->text side only; negative_same (B, N) marks the ones that
        happen to be an image's own caption, which are left out for that image."""
        scale = self.scale
        logits = scale * image_embed @ text_embed.t()
        if same is not None:
            off_diag = same & ~torch.eye(len(same), dtype=torch.bool, device=same.device)
            logits = logits.masked_fill(off_diag, float("-inf"))
        target = torch.arange(len(logits), device=logits.device)
        text_side = F.cross_entropy(logits.t(), target)
        if negative_embed is not None and len(negative_embed):
            extra = scale * image_embed @ negative_embed.t()
            if negative_same is not None:
                extra = extra.masked_fill(negative_same, float("-inf"))
            logits = torch.cat([logits, extra], dim=1)
        return 0.5 * (F.cross_entropy(logits, target) + text_side)
