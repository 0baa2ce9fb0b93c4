"""unCLIP's prior, decoder and upsampler training stages (CLIP's is in clip_stage.py). The prior
reads a frozen CLIP whose embeddings of every image and caption are computed once up front; the
decoder and upsampler are the shared UNet stage with unCLIP's options."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from t2i.checkpoint import Component
from t2i.data.dataset import ImageCaptionSet
from t2i.data.sources import load_dataset
from t2i.errors import InputError
from t2i.pipelines.sampling import clip_image_embeds, diffusion_of
from t2i.train.captions import CaptionTable
from t2i.train.options import CaptionOptions, DenoiserOptions, check_kinds, count, rate, scale
from t2i.train.stages import Stage, draw_rows
from t2i.train.unet_stage import UNetStage
from t2i.unclip.clip_stage import clip_text_embeds
from t2i.unclip.sampling import run_prior


@dataclass(frozen=True)
class PriorOptions(CaptionOptions):
    drop_text: float = rate(0.1)  # caption dropped (for classifier-free guidance)


@dataclass(frozen=True)
class DecoderOptions(DenoiserOptions):
    drop_embed: float = rate(0.1)  # image embedding dropped (for guidance)
    drop_text: float = rate(0.5)  # text tokens dropped
    embed_noise: float = scale(0.0)  # the largest noise added to the image embeddings (see noised_embeddings)


@dataclass(frozen=True)
class UpsamplerOptions:
    low_res_size: int = count(32)  # the side of the image it upsamples
    max_aug_level: int = count(0)  # noise-conditioning augmentation: the largest diffusion step the low-res input is noised to
    sample_aug_level: int = count(0)  # at sampling: the step the low-res input is noised to
    sample_start_level: int = count(0)  # at sampling: start from the noised upsampled input at this step (0: from pure noise)

    def __post_init__(self) -> None:
        check_kinds(self)
        if self.low_res_size < 1:
            raise InputError(f"low_res_size must be >= 1, got {self.low_res_size}")


class PriorStage(Stage):
    name, model_kind, options = "prior", "prior", PriorOptions

    @classmethod
    def settings(cls, options: PriorOptions, model: dict[str, Any]) -> dict[str, Any]:
        return {"embed_scale": math.sqrt(model["embed_dim"])}  # embeddings are diffused at unit variance per coordinate

    @classmethod
    def from_data(cls, component: Component, data: str, options: PriorOptions, needs: dict[str, Component], templates: tuple[str, ...]) -> PriorStage:
        clip = needs["clip"]
        return cls(component, clip, load_dataset(data, size=clip.model.config.image_size, shapes_counting=options.counting_scenes), drop_text=options.drop_text, max_length=options.max_length,
                   caption_augment=options.caption_augment, templates=templates, first_caption=options.first_caption)

    def __init__(self, component: Component, clip: Component, data: ImageCaptionSet, *, drop_text: float = 0.1, max_length: int = 32,
                 caption_augment: float = 0.0, templates: tuple[str, ...] = (), first_caption: float = 0.0) -> None:
        self.component, self.drop_text = component, drop_text
        self.diffusion = diffusion_of(component)
        self.scale = component.settings.get("embed_scale", math.sqrt(component.model.config.embed_dim))
        self.captions = CaptionTable(data, max_length=max_length, progress=True, augment=caption_augment, templates=templates, first=first_caption)
        self.image_embeds = clip_image_embeds(clip, data.resized(clip.model.config.image_size).images)
        self.text_embeds = clip_text_embeds(clip, self.captions)
        self.count = len(data)

    def batch(self, step, size, generator):
        idx = draw_rows(generator, self.count, size)
        rows = self.captions.draw(idx, generator)
        enc = self.captions.batch(rows)
        keep = torch.rand(size, generator=generator) >= self.drop_text
        return {"x0": self.image_embeds[idx] * self.scale, "text_embed": self.text_embeds[rows], "tokens": enc.tokens, "token_mask": enc.mask, "keep": keep}

    def loss(self, model, batch, generator):
        cond = {k: batch[k] for k in ("text_embed", "tokens", "token_mask", "keep")}
        return self.diffusion.loss(lambda x, t: model(x, t, **cond), batch["x0"], generator=generator).mean()

    def preview(self, model, step, out_dir):
        """Cosine of sampled image embeddings with the true ones, against the text-embedding baseline."""
        idx = torch.arange(min(64, self.count))
        rows = self.captions.first_rows(idx)
        enc = self.captions.batch(rows)
        text = self.text_embeds[rows]
        z = run_prior(Component(model=model, role="prior", settings=self.component.settings), text, enc.tokens, enc.mask, steps=25, guidance=1.0, generator=torch.Generator().manual_seed(0))
        truth = self.image_embeds[idx]
        return {"prior_cos": float((z * truth).sum(-1).mean()), "text_cos_baseline": float((text * truth).sum(-1).mean())}


class DecoderStage(UNetStage):
    name, options = "decoder", DecoderOptions


class UpsamplerStage(UNetStage):
    name, options = "upsampler", UpsamplerOptions
