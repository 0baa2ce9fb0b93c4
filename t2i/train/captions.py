"""A dataset's captions, encoded once by the frozen text encoder, drawn per image per step."""
from __future__ import annotations

import numpy as np
import torch

from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError
from t2i.text.augment import caption_variants
from t2i.text.cache import encode_cached
from t2i.text.encoder import TextEncoding, get_text_encoder
from t2i.text.negatives import KINDS, hard_negatives, rephrased_negatives
from t2i.text.phrases import phrase_table


class CaptionTable:
    """Every caption of every image, encoded (cached on disk); `draw` picks one per image.

    With negatives=True the hard negatives of every caption (t2i.text.negatives) are encoded
    too, in the same table, and `negatives[row]` lists their rows (-1 pads); `negative_kinds`
    limits them to some perturbations (relation flips alone, say). With negate_rephrasings=True
    the variants below get theirs too ("a square with a circle above it" -> "... below it").

    With augment = p > 0, each drawn caption is replaced, with chance p, by one of its variants
    (t2i.text.augment: an article, a framing such as "a picture of …", a rephrasing), encoded
    in the same table; `templates` are the framings that suit the dataset. With first = p > 0,
    each image's first caption is drawn with chance p (and otherwise one of all its captions).

    With phrase_mix = p > 0, each caption that lists phrases ("and", commas, "plus", ...) is drawn, with chance p,
    with its phrases' token states mixed towards those phrases encoded alone, at a weight drawn
    uniformly from 0 to 1 (t2i.text.phrases; what `--phrase-mix` does when sampling)."""

    def __init__(self, data: ImageCaptionSet, *, max_length: int = 32, progress: bool = False, negatives: bool = False,
                 negative_kinds: tuple[str, ...] = KINDS, augment: float = 0.0, templates: tuple[str, ...] = (), text_layers: int = 0,
                 phrase_mix: float = 0.0, negate_rephrasings: bool = False, first: float = 0.0) -> None:
        for what, p in (("caption augmentation", augment), ("first_caption", first), ("phrase_mix", phrase_mix)):
            if not 0.0 <= p <= 1.0:
                raise InputError(f"{what} must be a chance from 0 to 1, got {p}")
        self.augment, self.first = augment, first
        flat = [c for caps in data.captions for c in caps]
        unique = sorted(set(flat))
        negs = [hard_negatives(c, negative_kinds) for c in unique] if negatives else []
        variants = [caption_variants(c, templates) for c in unique] if augment > 0 else []
        owners = list(unique)
        if negatives and negate_rephrasings and variants:
            captions = set(unique)  # a variant that is another image's caption keeps that caption's negatives
            owner_of = {v: c for c, vs in zip(unique, variants) for v in vs if v not in captions}
            owners += sorted(owner_of)
            negs += [rephrased_negatives(owner_of[v], v, negative_kinds) for v in owners[len(unique):]]
        extra = [n for ns in negs for n in ns] + [v for vs in variants for v in vs]
        self.encoding, rows = encode_cached(flat + extra, max_length=max_length, layers=text_layers, progress=progress)
        self.rows = torch.tensor(rows[: len(flat)], dtype=torch.long)
        self.counts = torch.tensor([len(c) for c in data.captions], dtype=torch.long)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.texts = sorted(set(flat).union(extra))  # the encoding's rows, in order
        row_of = {t: i for i, t in enumerate(self.texts)}
        self.negatives = _row_lists(len(self.texts), owners, negs, row_of)
        self.variants = _row_lists(len(self.texts), unique, variants, row_of)
        self.phrase_mix = phrase_mix
        if phrase_mix > 0:
            self.phrase_rows, self.phrase_tokens = phrase_table(get_text_encoder(max_length, text_layers), self.texts, self.encoding)
        # the images of each caption row, grouped by row: for drawing an image a caption describes
        by_row = torch.argsort(self.rows, stable=True)
        self._image_of = torch.repeat_interleave(torch.arange(len(self.counts)), self.counts)[by_row]
        self._sorted_rows = self.rows[by_row]

    def draw(self, image_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) image indices -> (B,) rows of `encoding`, one of each image's captions at random
        (with augmentation, sometimes one of its variants instead)."""
        return self.draw_with_captions(image_index, generator)[0]

    def draw_with_captions(self, image_index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """As `draw`, with the rows of the captions drawn before augmentation: (rows, caption rows),
        equal where no variant replaced the caption. The same draws as `draw`."""
        pick = uniform_below(self.counts[image_index], generator)
        if self.first > 0:  # draws only when set: a run without it keeps its old batches
            pick = torch.where(torch.rand(len(image_index), generator=generator) < self.first, 0, pick)
        captions = self.rows[self.starts[image_index] + pick]
        return self.augmented(captions, generator), captions

    def augmented(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) caption rows, each replaced with chance `augment` by one of its variants."""
        if self.augment == 0:  # draws only when augmenting: a run without it keeps its old batches
            return rows
        swap = torch.rand(len(rows), generator=generator) < self.augment
        variant = _pick_from(self.variants, rows, generator)
        return torch.where(swap & (variant >= 0), variant, rows)

    def draw_negatives(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) caption rows -> (B,) rows of one hard negative each, at random; -1 where a caption has none."""
        return _pick_from(self.negatives, rows, generator)

    def draw_images(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) caption rows -> (B,) indices of an image with that caption, at random; -1 where none has it."""
        start = torch.searchsorted(self._sorted_rows, rows)
        count = torch.searchsorted(self._sorted_rows, rows, right=True) - start
        pick = start + (torch.rand(len(rows), generator=generator) * count).long()
        return torch.where(count > 0, self._image_of[pick.clamp(max=len(self._image_of) - 1)], -1)

    def first_rows(self, image_index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Each image's first caption: a fixed caption for previews and evaluation."""
        return self.rows[self.starts[torch.as_tensor(image_index, dtype=torch.long)]]

    def batch(self, rows: torch.Tensor, generator: torch.Generator | None = None) -> TextEncoding:
        """The encoding of `rows`, trimmed to its longest caption and cast to float32; with
        phrase_mix and a generator, some rows' phrases mixed with their own states."""
        enc = self.encoding.select(rows).trimmed().to(dtype=torch.float32)
        if self.phrase_mix == 0 or generator is None:
            return enc
        weight = torch.rand(len(rows), generator=generator) * (torch.rand(len(rows), generator=generator) < self.phrase_mix)
        table = self.phrase_rows[rows]
        own = self.phrase_tokens[table.clamp(min=0), : enc.tokens.shape[1]].to(torch.float32)
        weight = torch.where(table >= 0, weight, 0.0)[:, None, None]
        return TextEncoding(enc.tokens + weight * (own - enc.tokens), enc.mask, enc.pooled)


def uniform_below(counts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B,) positive counts -> (B,) an index below each count, uniformly: one draw per row."""
    return (torch.rand(len(counts), generator=generator) * counts).long().clamp(max=counts - 1)


def _row_lists(num_rows: int, owners: list[str], lists: list[list[str]], row_of: dict[str, int]) -> torch.Tensor:
    """(num_rows, longest list) of the rows each owner's strings have, -1 padded; (num_rows, 0)
    when there are no lists."""
    table = torch.full((num_rows, max((len(x) for x in lists), default=0)), -1, dtype=torch.long)
    for owner, items in zip(owners, lists):
        table[row_of[owner], : len(items)] = torch.tensor([row_of[t] for t in items], dtype=torch.long)
    return table


def _pick_from(table: torch.Tensor, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B,) rows -> (B,) one entry of each row's list in `table` at random; -1 where it is empty."""
    if table.shape[1] == 0:
        return torch.full_like(rows, -1)
    options = table[rows]
    count = (options >= 0).sum(1)
    pick = (torch.rand(len(rows), generator=generator) * count).long().clamp(min=0, max=table.shape[1] - 1)
    return torch.where(count > 0, options[torch.arange(len(rows)), pick], -1)
