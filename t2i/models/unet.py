"""The one UNet of the project: unCLIP's decoder and upsamplers, Imagen's base and super-resolution models.

Conditioning is chosen by the config, never by a subclass:
- `embed_dim`: a vector (a CLIP image embedding) added to the time embedding and turned into
  `num_embed_tokens` extra tokens that the attention layers attend to (DALL-E 2's decoder);
- `text_dim`: per-token text states attended to by every attention layer (GLIDE, Imagen), with
  `pooled_text` adding their masked mean to the time embedding (Imagen), `text_positions`
  adding a learned embedding of each token's index and `text_blocks` trainable transformer
  blocks over the tokens (see below);
- `low_res`: an upsampler's low-resolution image, resized and concatenated to the input, with
  `noise_aug` embedding its noise-augmentation level next to the timestep.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from t2i.config import check_sizes
from t2i.errors import InputError
from t2i.nn.attention import TransformerBlock
from t2i.nn.embeddings import ScalarEmbedding
from t2i.nn.resnet import Downsample, ResBlock, SpatialAttention, Upsample, group_norm, zero_init


@dataclass(frozen=True)
class UNetConfig:
    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention_levels: tuple[int, ...] = (1, 2)  # level indices (0 = full resolution) with attention
    head_dim: int = 32
    dropout: float = 0.0
    embed_dim: int = 0  # CLIP image embedding size; 0 = not conditioned on one
    num_embed_tokens: int = 4
    text_dim: int = 0  # text token state size; 0 = no text tokens
    pooled_text: bool = False
    # > 0: a learned embedding of the token index, for up to this many tokens, is added to each
    # text token. Attention sees the tokens as a set, and a sentence encoder's states barely
    # hold word order: MiniLM's tokens of "a circle to the left of a square" each have a match
    # of cosine >= 0.96 among those of "a square to the left of a circle".
    text_positions: int = 0
    # a learned embedding of each pixel's position at every attention layer: where a query is,
    # so that it can take what belongs there from the words ("a circle to the left of ...")
    image_positions: bool = False
    # > 0: trainable transformer blocks over the projected text tokens before any attention reads
    # them (GLIDE and latent diffusion train their text side; Imagen's stays frozen). One
    # cross-attention layer cannot make "the object before 'left of'" a key: a block here can
    # write into each object word which side of its relation it stands on.
    text_blocks: int = 0
    context_dim: int = 256  # width of the attention context tokens
    low_res: bool = False
    noise_aug: bool = False
    patch_size: int = 1  # space-to-depth factor before the first conv: CPU convs are far faster on fewer, wider pixels
    # Imagen's Efficient U-Net (paper appendix B.1), each on its own:
    level_res_blocks: tuple[int, ...] = ()  # residual blocks per level, replacing num_res_blocks (more at low resolution)
    scale_skips: bool = False  # skip connections scaled by 1/sqrt(2)
    # every level, the first included, starts by downsampling and every up level ends by
    # upsampling: all blocks run at half the resolution of the standard layout (less compute)
    downsample_first: bool = False

    def __post_init__(self) -> None:
        check_sizes(self, at_least_1=("image_size", "in_channels", "out_channels", "base_channels", "channel_mults", "num_res_blocks", "head_dim",
                                      "num_embed_tokens", "context_dim", "patch_size"),
                    at_least_0=("embed_dim", "text_dim", "text_positions", "text_blocks", "attention_levels", "level_res_blocks"))
        if not self.channel_mults:
            raise InputError("channel_mults needs at least one level")
        levels = len(self.channel_mults)
        halvings = levels if self.downsample_first else levels - 1
        if self.image_size % (self.patch_size * 2**halvings):
            raise InputError(f"image_size {self.image_size} is not divisible by patch_size·2^{halvings}")
        if any(not 0 <= lv < levels for lv in self.attention_levels):
            raise InputError(f"attention_levels {self.attention_levels} out of range for {levels} levels")
        if self.noise_aug and not self.low_res:
            raise InputError("noise_aug needs low_res")
        if self.pooled_text and not self.text_dim:
            raise InputError("pooled_text needs text_dim")
        if self.text_positions and not self.text_dim:
            raise InputError("text_positions needs text_dim")
        if self.text_blocks and not self.text_dim:
            raise InputError("text_blocks needs text_dim")
        if self.text_blocks and self.context_dim % self.head_dim:
            raise InputError(f"text_blocks needs context_dim ({self.context_dim}) divisible by head_dim ({self.head_dim})")
        if self.level_res_blocks and (len(self.level_res_blocks) != levels or min(self.level_res_blocks) < 1):
            raise InputError(f"level_res_blocks needs one count >= 1 per level ({levels}), got {self.level_res_blocks}")

    def res_blocks(self, level: int) -> int:
        return self.level_res_blocks[level] if self.level_res_blocks else self.num_res_blocks


def _residual_at_zero(block: TransformerBlock) -> TransformerBlock:
    """A block whose branches start at zero: the identity, so a warm start from a model without it starts out unchanged."""
    zero_init(block.attn.out)
    zero_init(block.mlp[-1])
    return block


class UNet(nn.Module):
    """Predicts the diffusion target (noise, x0 or v) for x_t.

    forward(x (B, C, H, W) in [-1, 1] scale, t (B,) long, embed (B, embed_dim), embed_keep (B,) bool,
    tokens (B, T, text_dim), token_mask (B, T) bool, low_res (B, 3, h, w), aug_level (B,) long)
    -> (B, out_channels, H, W). `embed_keep` False swaps in a learned null embedding (guidance);
    a row of `token_mask` all False means "no text".
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = c = config
        ch = c.base_channels
        emb_dim = 4 * ch
        self.time_embed = ScalarEmbedding(feature_dim=ch, out_dim=emb_dim)
        self.aug_embed = ScalarEmbedding(feature_dim=ch, out_dim=emb_dim) if c.noise_aug else None
        self.has_context = bool(c.embed_dim or c.text_dim)
        if c.embed_dim:
            self.null_embed = nn.Parameter(torch.zeros(c.embed_dim))
            self.embed_to_time = nn.Linear(c.embed_dim, emb_dim)
            self.embed_to_tokens = nn.Linear(c.embed_dim, c.num_embed_tokens * c.context_dim)
        if c.text_dim:
            self.text_proj = nn.Linear(c.text_dim, c.context_dim)
            # these two start at zero, so a model warm-started from one without them starts out unchanged
            self.pooled_to_time = zero_init(nn.Linear(c.text_dim, emb_dim)) if c.pooled_text else None
            self.text_pos = nn.Parameter(torch.zeros(c.text_positions, c.context_dim)) if c.text_positions else None
            self.text_blocks = nn.ModuleList(_residual_at_zero(TransformerBlock(dim=c.context_dim, num_heads=c.context_dim // c.head_dim))
                                             for _ in range(c.text_blocks))
        if self.has_context:
            self.context_norm = nn.LayerNorm(c.context_dim)
        context_dim = c.context_dim if self.has_context else 0

        in_ch = (c.in_channels + (3 if c.low_res else 0)) * c.patch_size**2
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch]  # the stem's output, the one full-resolution skip
        cur = ch
        last = len(c.channel_mults) - 1
        for level, mult in enumerate(c.channel_mults):
            if c.downsample_first:
                self.down.append(Downsample(cur))
                skips.append(cur)
            for _ in range(c.res_blocks(level)):
                out = ch * mult
                self.down.append(self._stage(cur, out, emb_dim, context_dim, level))
                cur = out
                skips.append(cur)
            if not c.downsample_first and level < last:
                self.down.append(Downsample(cur))
                skips.append(cur)
        self.mid = nn.ModuleList([
            ResBlock(in_ch=cur, out_ch=cur, emb_dim=emb_dim, dropout=c.dropout),
            SpatialAttention(channels=cur, head_dim=c.head_dim, context_dim=context_dim, positions=self._positions(len(c.channel_mults) - 1)),
            ResBlock(in_ch=cur, out_ch=cur, emb_dim=emb_dim, dropout=c.dropout),
        ])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mults))):
            for i in range(c.res_blocks(level) + 1):
                out = ch * mult
                self.up.append(self._stage(cur + skips.pop(), out, emb_dim, context_dim, level))
                cur = out
                if (level > 0 or c.downsample_first) and i == c.res_blocks(level):
                    self.up.append(Upsample(cur))
        if c.downsample_first:
            # every other block runs at half resolution: without one that reads the stem at full
            # resolution, the output is upsampled features and per-pixel noise goes unpredicted
            self.up.append(self._stage(cur + skips.pop(), cur, emb_dim, context_dim, level=-1))
        self.norm_out = group_norm(cur)
        self.conv_out = zero_init(nn.Conv2d(cur, c.out_channels * c.patch_size**2, 3, padding=1))
        # NHWC convolutions: 1.5x the training throughput of NCHW on a CPU (bench/unclip_speed.py)
        self.to(memory_format=torch.channels_last)

    def _positions(self, level: int) -> int:
        """Pixels of the feature map at `level` when attention layers embed positions, else 0."""
        c = self.config
        return (c.image_size // c.patch_size // 2 ** (level + c.downsample_first)) ** 2 if c.image_positions else 0

    def _stage(self, in_ch: int, out_ch: int, emb_dim: int, context_dim: int, level: int) -> nn.ModuleList:
        blocks = [ResBlock(in_ch=in_ch, out_ch=out_ch, emb_dim=emb_dim, dropout=self.config.dropout)]
        if level in self.config.attention_levels:
            blocks.append(SpatialAttention(channels=out_ch, head_dim=self.config.head_dim, context_dim=context_dim, positions=self._positions(level)))
        return nn.ModuleList(blocks)

    def _conditioning(self, t, embed, embed_keep, tokens, token_mask, aug_level):
        """Time embedding (B, E) and attention context (B, M, context_dim) with its mask (B, M)."""
        c = self.config
        emb = self.time_embed(t)
        parts, masks = [], []
        if c.embed_dim:
            if embed is None:
                raise ValueError("this UNet is conditioned on an image embedding: pass embed")
            if embed_keep is not None:
                embed = torch.where(embed_keep[:, None], embed, self.null_embed.to(embed.dtype))
            emb = emb + self.embed_to_time(embed)
            parts.append(self.embed_to_tokens(embed).view(len(embed), c.num_embed_tokens, c.context_dim))
            masks.append(torch.ones(len(embed), c.num_embed_tokens, dtype=torch.bool, device=embed.device))
        if c.text_dim:
            if tokens is None or token_mask is None:
                raise ValueError("this UNet is conditioned on text: pass tokens and token_mask")
            text = self.text_proj(tokens)
            if self.text_pos is not None:
                if tokens.shape[1] > c.text_positions:
                    raise ValueError(f"{tokens.shape[1]} text tokens, but this UNet has positions for {c.text_positions}")
                text = text + self.text_pos[: tokens.shape[1]].to(text.dtype)
            if len(self.text_blocks):
                # a caption's words attend to its words only; a dropped caption (no word at all)
                # attends to everything, since the mask below hides its tokens from the UNet anyway
                keys = token_mask | ~token_mask.any(1, keepdim=True)
                for block in self.text_blocks:
                    text = block(text, mask=keys[:, None, None, :])
            parts.append(text)
            masks.append(token_mask)
            if self.pooled_to_time is not None:
                m = token_mask[..., None].to(tokens.dtype)
                pooled = (tokens * m).sum(1) / m.sum(1).clamp(min=1)
                emb = emb + self.pooled_to_time(pooled)
        if self.aug_embed is not None:
            if aug_level is None:
                raise ValueError("this upsampler needs aug_level")
            emb = emb + self.aug_embed(aug_level)
        if not parts:
            return emb, None, None
        return emb, self.context_norm(torch.cat(parts, dim=1)), torch.cat(masks, dim=1)

    def forward(self, x, t, *, embed=None, embed_keep=None, tokens=None, token_mask=None, low_res=None, aug_level=None):
        emb, context, context_mask = self._conditioning(t, embed, embed_keep, tokens, token_mask, aug_level)
        if self.config.low_res:
            if low_res is None:
                raise ValueError("this upsampler needs low_res")
            x = torch.cat([x, F.interpolate(low_res, size=x.shape[-2:], mode="bilinear", align_corners=False)], dim=1)
        h = self.conv_in(F.pixel_unshuffle(x, self.config.patch_size).contiguous(memory_format=torch.channels_last))
        skips = [h]
        for block in self.down:
            h = self._run(block, h, emb, context, context_mask)
            skips.append(h)
        for block in self.mid:
            h = self._run(block, h, emb, context, context_mask)
        skip_scale = 2**-0.5 if self.config.scale_skips else 1.0
        for block in self.up:
            if isinstance(block, Upsample):
                h = block(h)
            else:
                h = self._run(block, torch.cat([h, skips.pop() * skip_scale], dim=1), emb, context, context_mask)
        return F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(h))), self.config.patch_size)

    @staticmethod
    def _run(block, h, emb, context, context_mask):
        if isinstance(block, (Downsample, Upsample)):
            return block(h)
        if isinstance(block, ResBlock):
            return block(h, emb)
        if isinstance(block, SpatialAttention):
            return block(h, context, context_mask)
        for layer in block:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h, context, context_mask)
        return h
