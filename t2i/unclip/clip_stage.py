"""unCLIP's CLIP training stage: contrastive image and text encoders (and an optional matching head)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from t2i.checkpoint import Component
from t2i.data.dataset import ImageCaptionSet, to_model_range
from t2i.data.sources import load_dataset
from t2i.errors import InputError
from t2i.models.clip import kept_length
from t2i.models.retrieval import hard_negative_accuracy, retrieval_scores
from t2i.pipelines.sampling import clip_image_embeds
from t2i.train.captions import CaptionTable, uniform_below
from t2i.train.options import CaptionOptions, count, flag
from t2i.train.stages import Stage, draw_rows


@dataclass(frozen=True)
class ClipOptions(CaptionOptions):
    hard_negatives: bool = flag(False)  # captions with the same words and another meaning as extra negatives
    match_only: bool = flag(False)  # train the matching head alone, both towers frozen
    text_only: bool = flag(False)  # train the text side alone over a frozen image tower
    # rephrased captions (caption_augment) get hard negatives too: their own on the caption side,
    # and on the image side (the matching head) images that the rephrased caption's negatives describe
    contrast_rephrased: bool = flag(False)
    # the head reads each caption's tokens at positions moved along by up to this many, drawn at
    # random: a head that learnt "the colour at position 2 goes with the shape at position 3"
    # unbinds a caption that a few words come before ("show me a red circle and ...")
    match_shift: int = count(0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.match_only and self.text_only:
            raise InputError("match_only and text_only exclude each other")
        if self.contrast_rephrased and not (self.hard_negatives and self.caption_augment > 0):
            raise InputError("contrast_rephrased gives rephrased captions hard negatives: it needs hard_negatives and caption_augment > 0")


def match_shifts(token_mask: torch.Tensor, max_tokens: int, most: int, generator: torch.Generator) -> torch.Tensor:
    """(B, T) masks -> (B,) how far along the head reads each caption (options.match_shift): at
    random up to `most`, and up to what the caption's own tokens leave of max_tokens, so that a
    batch's longest caption does not pin the rest in place."""
    room = (max_tokens - kept_length(token_mask)).clamp(min=0, max=most)
    return uniform_below(room + 1, generator)


@torch.no_grad()
def clip_text_embeds(clip: Component, table: CaptionTable, batch: int = 512) -> torch.Tensor:
    """Every row of the caption table -> (U, E) unit-norm CLIP text embeddings."""
    out = []
    for i in range(0, len(table.encoding), batch):
        enc = table.batch(torch.arange(i, min(i + batch, len(table.encoding))))
        out.append(clip.model.encode_text(enc.tokens, enc.mask, enc.pooled))
    return torch.cat(out)


class ClipStage(Stage):
    """Contrastive CLIP training; with a matching head (model.match_depth > 0) also its
    image-text matching loss, BLIP-style, on each image with its own caption, another image's
    caption and (with hard_negatives) a hard negative caption and an image that it describes.
    match_only freezes both towers and trains the head alone, so the embedding space a prior and
    decoder were trained in stays as it is. text_only freezes the image tower (and any head) and
    trains the text side alone: every image embedding, so every input a decoder was trained
    on, stays bit for bit what it was, and the images' embeddings are computed once up front.
    contrast_rephrased gives rephrased captions hard negatives too; without it a rephrased
    caption has none, so a head trained with augmentation meets no hard case in its wordings."""

    name, model_kind, options, diffusion = "clip", "clip", ClipOptions, False

    @classmethod
    def from_data(cls, component: Component, data: str, options: ClipOptions, needs: dict[str, Component], templates: tuple[str, ...]) -> ClipStage:
        size = component.model.config.image_size
        train = load_dataset(data, size=size, split="train", shapes_counting=options.counting_scenes)
        # user data has no held-out part: retrieval is then measured on training pairs
        heldout = load_dataset(data, size=size, split="heldout") if data in ("emoji", "shapes") else None
        return cls(component, train, heldout=heldout, max_length=options.max_length, hard_negatives=options.hard_negatives, match_only=options.match_only,
                   text_only=options.text_only, caption_augment=options.caption_augment, templates=templates,
                   contrast_rephrased=options.contrast_rephrased, first_caption=options.first_caption, match_shift=options.match_shift)

    def __init__(self, component: Component, data: ImageCaptionSet, *, heldout: ImageCaptionSet | None = None, max_length: int = 32,
                 hard_negatives: bool = False, match_only: bool = False, text_only: bool = False,
                 caption_augment: float = 0.0, templates: tuple[str, ...] = (), contrast_rephrased: bool = False,
                 first_caption: float = 0.0, match_shift: int = 0) -> None:
        self.component, self.hard_negatives, self.match_only, self.text_only = component, hard_negatives, match_only, text_only
        self.contrast_rephrased, self.match_shift = contrast_rephrased, match_shift
        model = component.model
        if match_only and text_only:
            raise InputError("options.match_only and options.text_only exclude each other")
        if match_only:
            if not model.has_match_head:
                raise InputError("options.match_only needs a CLIP with a matching head (model.match_depth > 0)")
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith("match_"))
        if text_only:
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith("text_") or name == "logit_scale")
        self.data = data.resized(model.config.image_size)
        self.captions = CaptionTable(self.data, max_length=max_length, progress=True, negatives=hard_negatives,
                                     augment=caption_augment, templates=templates, negate_rephrasings=contrast_rephrased, first=first_caption)
        self._image_embeds: torch.Tensor | None = None
        self.heldout = heldout.resized(model.config.image_size) if heldout is not None and len(heldout) else None
        # with negatives: the preview measures how far CLIP is from a bag of words, trained on them or not
        self.heldout_captions = CaptionTable(self.heldout, max_length=max_length, negatives=True) if self.heldout is not None else None

    @property
    def image_embeds(self) -> torch.Tensor | None:
        """text_only: the frozen tower's embeddings of every image, computed at the first batch,
        not when the stage is built: a resumed run has its checkpoint's weights loaded only then,
        and embeddings from the fresh weights it is built with would be noise."""
        if self.text_only and self._image_embeds is None:
            self._image_embeds = clip_image_embeds(self.component, self.data.images).cpu()  # batches are drawn on the CPU
        return self._image_embeds

    def batch(self, step, size, generator):
        idx = draw_rows(generator, len(self.data), size)
        rows, captions = self.captions.draw_with_captions(idx, generator)
        enc = self.captions.batch(rows)
        out = {"tokens": enc.tokens, "token_mask": enc.mask, "pooled": enc.pooled, "rows": rows}
        if self.image_embeds is not None:
            out["image_embed"] = self.image_embeds[idx]
        else:
            out["images"] = to_model_range(self.data.images[idx.numpy()])
        if self.hard_negatives:
            neg = self.captions.draw_negatives(rows, generator)
            owner = (neg >= 0).nonzero(as_tuple=True)[0]
            if len(owner):
                enc = self.captions.batch(neg[owner])
                out.update(neg_tokens=enc.tokens, neg_mask=enc.mask, neg_pooled=enc.pooled, neg_rows=neg[owner], neg_owner=owner)
                if self.component.model.has_match_head and not self.text_only:
                    # and the other way round, for the head: an image that the negative describes,
                    # which the caption does not; ranking candidates compares images, not captions
                    self._add_negative_images(out, owner, neg[owner], generator)
            if self.contrast_rephrased and self.component.model.has_match_head and not self.text_only:
                # no image has a rephrasing's negative as its caption: a rephrased row's images
                # come from the negatives of the caption it rephrases, which mean the same
                reworded = (rows != captions).nonzero(as_tuple=True)[0]
                self._add_negative_images(out, reworded, self.captions.draw_negatives(captions[reworded], generator), generator)
        return out

    def _add_negative_images(self, out: dict, owner: torch.Tensor, negatives: torch.Tensor, generator) -> None:
        """For batch rows `owner`, an image that each of the caption rows `negatives` describes,
        added to out's neg_images / neg_image_owner; rows whose negative no image has get none."""
        other = self.captions.draw_images(negatives, generator)
        found = other >= 0
        if not found.any():
            return
        images, mine = to_model_range(self.data.images[other[found].numpy()]), owner[found]
        if "neg_images" in out:
            images, mine = torch.cat([out["neg_images"], images]), torch.cat([out["neg_image_owner"], mine])
        out.update(neg_images=images, neg_image_owner=mine)

    def loss(self, model, batch, generator):
        if "image_embed" in batch:  # text_only: the frozen tower's embeddings, computed up front
            image, loss = batch["image_embed"], 0.0
        else:
            tokens = model.image_tokens(batch["images"])
            loss = self.match_loss(model, tokens, batch, generator) if model.has_match_head else 0.0
            if self.match_only:
                return loss
            image = model.embed_image_tokens(tokens)
        same = batch["rows"][:, None] == batch["rows"][None, :]  # one caption drawn twice is no negative
        text = model.encode_text(batch["tokens"], batch["token_mask"], batch["pooled"])
        if "neg_rows" not in batch:
            return loss + model.contrastive_loss(image, text, same)
        negative = model.encode_text(batch["neg_tokens"], batch["neg_mask"], batch["neg_pooled"])
        # one image's hard negative can be another image's own caption
        return loss + model.contrastive_loss(image, text, same, negative, batch["rows"][:, None] == batch["neg_rows"][None, :])

    def match_loss(self, model, image_tokens, batch, generator):
        """Matching loss over own captions (positives), the next image's caption where it differs,
        the hard negative captions and images that those describe; with match_shift, each pair
        read at positions moved along at random."""
        rows, b = batch["rows"], len(batch["rows"])
        other = torch.roll(torch.arange(b), 1)
        differs = (rows[other] != rows).nonzero(as_tuple=True)[0]
        owners = [torch.arange(b), differs]
        tokens, masks = [batch["tokens"], batch["tokens"][other[differs]]], [batch["token_mask"], batch["token_mask"][other[differs]]]
        if "neg_owner" in batch:
            owners.append(batch["neg_owner"])
            tokens.append(batch["neg_tokens"]), masks.append(batch["neg_mask"])
        owner = torch.cat(owners)
        images, image_tokens = batch["images"][owner], image_tokens[owner]
        if "neg_image_owner" in batch:  # image-side hard negatives: another image, this caption
            mine = batch["neg_image_owner"]
            tokens.append(batch["tokens"][mine]), masks.append(batch["token_mask"][mine])
            images = torch.cat([images, batch["neg_images"]])
            image_tokens = torch.cat([image_tokens, model.image_tokens(batch["neg_images"])])
        matches = torch.arange(len(images)) < b
        width = max(t.shape[1] for t in tokens)  # caption batches are padded to their own longest
        tokens = torch.cat([F.pad(t, (0, 0, 0, width - t.shape[1])) for t in tokens])
        masks = torch.cat([F.pad(m, (0, width - m.shape[1])) for m in masks])
        # draws only when set: a run without it keeps its old losses
        shift = match_shifts(masks, model.config.max_tokens, self.match_shift, generator) if self.match_shift > 0 else None
        return model.match_loss(images, tokens, masks, matches, image_tokens=image_tokens, shift=shift)

    @torch.no_grad()
    def preview(self, model, step, out_dir: Path):
        data, table = (self.heldout, self.heldout_captions) if self.heldout is not None else (self.data, self.captions)
        n = min(len(data), 500)
        images = to_model_range(data.images[:n])
        tokens = model.image_tokens(images)  # one tower pass: the embeddings, and the head's context
        image = model.embed_image_tokens(tokens)
        rows = table.first_rows(np.arange(n))
        enc = table.batch(rows)
        text = model.encode_text(enc.tokens, enc.mask, enc.pooled)
        texts = [data.captions[i][0] for i in range(n)]
        scores = retrieval_scores(image, text, texts)
        negatives = table.negatives[rows]
        owner, neg = (negatives >= 0).nonzero(as_tuple=True)
        if len(owner):
            enc = table.batch(negatives[owner, neg])
            scores["hard_negative_accuracy"] = hard_negative_accuracy(image, text, model.encode_text(enc.tokens, enc.mask, enc.pooled), owner)
            if model.has_match_head:
                # the same test for the matching head: does it score the image's caption above the negative?
                mine = table.batch(rows[owner])
                own = model.match_logits(images[owner], mine.tokens, mine.mask, image_tokens=tokens[owner])
                other = model.match_logits(images[owner], enc.tokens, enc.mask, image_tokens=tokens[owner])
                scores["match_negative_accuracy"] = float((own > other).float().mean())
        return scores
