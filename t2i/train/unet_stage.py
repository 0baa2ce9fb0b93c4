"""One UNet training stage for every UNet of every system; which conditions it trains with follows
from the model's config, each optional:

- `embed_dim > 0`: a CLIP image embedding (needs a trained CLIP), dropped at `drop_embed` for
  guidance and noised up to `embed_noise`;
- `text_dim > 0`: the caption's token states (with caption augmentation), dropped at `drop_text`;
  with `text_consistency` > 0 (a fine-tune), a rephrased caption's prediction is also pulled
  toward what the model the fine-tune started from predicts from the caption itself, and with
  `caption_contrast` > 0 a hard negative of the caption (relation flipped, colours swapped, count
  changed; `contrast_negatives` picks which) must denoise the same noisy image worse than the
  caption does (see `loss`), a rephrased caption's too with `contrast_rephrased`;
- `low_res`: the image itself at `low_res_size`, noised to a random level up to `max_aug_level`
  (noise-conditioning augmentation; the network is told the level when `noise_aug` is set).

Any of them may train on the noisiest steps alone (`min_step`: a high-noise expert) and train
only some of its weights (`train_only`, e.g. "attn,text": the rest stay as `--init-from` left them).

unCLIP's decoder is embedding + text, its upsampler low-res alone; a text-only UNet (Imagen's
base) or an upsampler that reads the caption (Imagen's super-resolution) are other configs of
the same stage. The roles differ only in their name and their options class.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2i.checkpoint import Component
from t2i.data.dataset import ImageCaptionSet, to_model_range
from t2i.data.sources import load_dataset
from t2i.errors import InputError
from t2i.image_grid import save_grid
from t2i.pipelines.sampling import clip_image_embeds, diffusion_config, diffusion_of, run_decoder, run_upsampler
from t2i.text.negatives import negative_kinds
from t2i.train.captions import CaptionTable
from t2i.train.options import UNetOptions, sampling_settings
from t2i.train.stages import PREVIEW_COUNT, GroupDraw, Stage, draw_rows, noised_embeddings
from t2i.train.trainable import freeze_all_but

# what a batch holds for text_consistency and caption_contrast beside the model's conditions
EXTRA_KEYS = ("caption_tokens", "caption_mask", "reworded", "negative_tokens", "negative_mask", "negated")
# caption_contrast's temperature, in units of the pair's mean error: a negative that denoises 5%
# worse than the caption is half-way to costing nothing more
CONTRAST_TEMPERATURE = 0.05


class UNetStage(Stage):
    name, model_kind, options = "unet", "unet", UNetOptions

    @classmethod
    def settings(cls, options, model: dict[str, Any]) -> dict[str, Any]:
        if not model.get("low_res"):
            return {}
        return {"low_res_size": options.low_res_size, "max_aug_level": options.max_aug_level, **sampling_settings(options)}

    @classmethod
    def from_data(cls, component: Component, data: str, options, needs: dict[str, Component], templates: tuple[str, ...]) -> UNetStage:
        clip = needs.get("clip")
        size = max(component.model.config.image_size, clip.model.config.image_size if clip is not None else 0)
        kwargs = dataclasses.asdict(options)
        data_set = load_dataset(data, size=size, shapes_counting=kwargs.pop("counting_scenes", 0))  # an upsampler reads no captions: none
        return cls(component, data_set, clip=clip, teacher=needs.get("teacher"), templates=templates, **kwargs)

    def __init__(self, component: Component, data: ImageCaptionSet, *, clip: Component | None = None, teacher: Component | None = None, drop_embed: float = 0.1, drop_text: float = 0.5,
                 embed_noise: float = 0.0, max_length: int = 32, caption_augment: float = 0.0, templates: tuple[str, ...] = (),
                 low_res_size: int = 32, max_aug_level: int = 0, sample_aug_level: int = 0, sample_start_level: int = 0, text_layers: int = 0,
                 text_consistency: float = 0.0, caption_contrast: float = 0.0, contrast_negatives: str = "all", contrast_rephrased: bool = False,
                 min_step: int = 0, train_only: str = "", phrase_mix: float = 0.0, first_caption: float = 0.0,
                 balance_groups: bool = False) -> None:
        # sample_*: sampling-time options, kept in the component's settings (see settings), not used in training
        cfg = component.model.config
        if cfg.embed_dim and clip is None:
            raise ValueError("a UNet conditioned on CLIP image embeddings trains with a CLIP")
        if text_consistency and not (cfg.text_dim and caption_augment > 0):
            raise InputError("text_consistency pulls rephrased captions toward their own: it needs a UNet that reads text and caption_augment > 0")
        kinds = negative_kinds(contrast_negatives)  # checked even when unused, and before any data work: a typo fails at once
        freeze_all_but(component.model, train_only)
        if caption_contrast and not cfg.text_dim:
            raise InputError("caption_contrast compares a caption with its hard negatives: it needs a UNet that reads text")
        if contrast_rephrased and not (caption_contrast and caption_augment > 0):
            raise InputError("contrast_rephrased gives rephrased captions hard negatives: it needs caption_contrast > 0 and caption_augment > 0")
        if text_consistency and teacher is None:
            raise InputError("text_consistency pulls toward the predictions of the model a fine-tune starts from: give it (--init-from)")
        self.component, self.drop_embed, self.drop_text, self.embed_noise = component, drop_embed, drop_text, embed_noise
        self.text_consistency, self.caption_contrast = text_consistency, caption_contrast
        # frozen: pulling toward the live model's own predictions lets both drift to ignoring the words
        self.teacher = teacher.model.eval().requires_grad_(False) if text_consistency else None
        self.diffusion = diffusion_of(component)
        self.weighting = diffusion_config(component).weighting
        # min_step > 0 trains on steps min_step..T-1 only: an expert for the noisiest steps, where
        # the layout is chosen and the caption is most of what the model has to go on (eDiff-I)
        if not 0 <= min_step < self.diffusion.num_steps:
            raise InputError(f"min_step must be from 0 to {self.diffusion.num_steps - 1}, got {min_step}")
        self.min_step = min_step
        self.data = data.resized(cfg.image_size)
        self.group_draw = GroupDraw(data.groups, len(data)) if balance_groups else None
        self.embeds = clip_image_embeds(clip, data.resized(clip.model.config.image_size).images) if cfg.embed_dim else None
        self.captions = CaptionTable(data, max_length=max_length, progress=True, augment=caption_augment, templates=templates,
                                     text_layers=text_layers, negatives=caption_contrast > 0, negative_kinds=kinds, phrase_mix=phrase_mix,
                                     negate_rephrasings=contrast_rephrased, first=first_caption) if cfg.text_dim else None
        self.low_size, self.max_aug = (int(component.settings.get("low_res_size", low_res_size)), int(component.settings.get("max_aug_level", max_aug_level))) if cfg.low_res else (0, 0)

    def _low(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.low_size, self.low_size), mode="area")

    def batch(self, step, size, generator):
        idx = self.group_draw(generator, size) if self.group_draw else draw_rows(generator, len(self.data), size)
        out = {"x0": to_model_range(self.data.images[idx.numpy()])}
        if self.embeds is not None:
            out.update(embed=self.embeds[idx], embed_keep=torch.rand(size, generator=generator) >= self.drop_embed)
            if self.embed_noise:
                out["embed"] = noised_embeddings(out["embed"], self.embed_noise, generator)
        if self.captions is not None:
            rows, captions = self.captions.draw_with_captions(idx, generator)
            enc = self.captions.batch(rows, generator)
            keep_text = torch.rand(size, generator=generator) >= self.drop_text
            out.update(tokens=enc.tokens, token_mask=enc.mask & keep_text[:, None])
            if self.text_consistency:
                plain = self.captions.batch(captions)
                out.update(caption_tokens=plain.tokens, caption_mask=plain.mask, reworded=(rows != captions) & keep_text)
            if self.caption_contrast:  # negatives exist for the captions, and for their rephrasings with contrast_rephrased
                negative = self.captions.draw_negatives(rows, generator)
                negated = (negative >= 0) & keep_text
                negatives = self.captions.batch(negative.clamp(min=0))  # rows without one are masked out by `negated`
                out.update(negative_tokens=negatives.tokens, negative_mask=negatives.mask, negated=negated)
        if self.low_size:
            low = self._low(out["x0"])
            # noise-conditioning augmentation: the network sees how noisy its input is
            aug = torch.randint(0, self.max_aug + 1, (size,), generator=generator)
            noisy = self.diffusion.q_sample(low, aug, torch.randn(low.shape, generator=generator))
            out.update(low_res=torch.where((aug > 0)[:, None, None, None], noisy, low), aug_level=aug)
        return out

    def loss(self, model, batch, generator):
        """The diffusion loss, plus two optional terms on the same noisy images:

        - text_consistency = λ: λ times the squared distance, on the rows whose caption was
          rephrased, between the prediction from the rephrasing and the frozen starting model's
          prediction from the caption. The plain loss asks both wordings for the same noisy
          target; the pull hands the rephrasing a clean target: what the caption makes the model draw.
        - caption_contrast = λ: on the rows whose caption has a hard negative, λ·m·τ·softplus(
          (e₊ − e₋)/(τ·m)), with e₊, e₋ the errors of the predictions from the caption and from
          the negative, m their mean (held constant) and τ = CONTRAST_TEMPERATURE: a soft hinge on
          how much better the true caption denoises. The plain loss barely pays for reading a
          relation (knowing it lowers the best x0 error by 2%, docs/results/unclip.md); this
          term pays whenever the negative denoises as well as the caption, and stops paying once
          it is clearly worse.
        """
        cond = {k: v for k, v in batch.items() if k not in ("x0", *EXTRA_KEYS)}
        x0 = batch["x0"]
        t = self.diffusion.sample_t(len(x0), generator=generator, device=x0.device, low=self.min_step) if self.min_step else None
        if not (self.text_consistency or self.caption_contrast):
            return self.diffusion.loss(lambda x, t: model(x, t, **cond), x0, generator=generator, t=t, weighting=self.weighting).mean()
        seen = {}

        def observed(x, t):
            seen.update(x=x, t=t, out=model(x, t, **cond))
            return seen["out"]

        loss = self.diffusion.loss(observed, x0, generator=generator, t=t, weighting=self.weighting)
        total = loss.mean()
        if self.text_consistency:
            total = total + self.text_consistency * self._consistency(batch, cond, seen).sum() / len(loss)
        if self.caption_contrast:
            total = total + self.caption_contrast * self._contrast(model, batch, cond, seen).sum() / len(loss)
        return total

    def _consistency(self, batch, cond, seen) -> torch.Tensor:
        """Per rephrased row: the squared distance to the frozen start's prediction from the caption."""
        rows = batch["reworded"].nonzero().squeeze(1)
        if len(rows) == 0:
            return seen["out"].new_zeros(0)
        plain = _rows_with_text(cond, rows, batch["caption_tokens"], batch["caption_mask"])
        teacher = self.teacher.to(seen["x"].device)  # the loop places the batch and the trained model, not this frozen one
        with torch.no_grad():
            target = teacher(seen["x"][rows], seen["t"][rows], **plain)
        return (seen["out"][rows] - target).pow(2).flatten(1).mean(1)

    def _contrast(self, model, batch, cond, seen) -> torch.Tensor:
        """Per row with a hard negative: the soft hinge of `loss` on the two captions' errors."""
        rows = batch["negated"].nonzero().squeeze(1)
        if len(rows) == 0:
            return seen["out"].new_zeros(0)
        x0, x, t = batch["x0"][rows], seen["x"][rows], seen["t"][rows]
        target = self.diffusion.training_target(x0, self.diffusion.eps_from_x0(x0, x, t), t)
        negative = _rows_with_text(cond, rows, batch["negative_tokens"], batch["negative_mask"])
        error_true = (seen["out"][rows] - target).pow(2).flatten(1).mean(1)
        error_negative = (model(x, t, **negative) - target).pow(2).flatten(1).mean(1)
        scale = (CONTRAST_TEMPERATURE * (error_true + error_negative).detach() / 2).clamp(min=1e-12)
        return scale * F.softplus((error_true - error_negative) / scale)

    def preview(self, model, step, out_dir):
        """Samples for the first images' conditions beside the real images (and the low-res input)."""
        idx = np.arange(min(PREVIEW_COUNT, len(self.data)))
        real = to_model_range(self.data.images[idx])
        comp = Component(model=model, role=self.name, settings=self.component.settings)
        generator = torch.Generator().manual_seed(0)
        kw = {}
        if self.captions is not None:
            enc = self.captions.batch(self.captions.first_rows(idx))
            kw = {"tokens": enc.tokens, "token_mask": enc.mask}
        if self.min_step:  # an expert cannot sample a chain: its x0 from pure noise shows the layout it picks
            cond = dict(kw)
            if self.embeds is not None:
                cond.update(embed=self.embeds[idx], embed_keep=torch.ones(len(idx), dtype=torch.bool))
            if self.low_size:
                cond.update(low_res=self._low(real), aug_level=torch.zeros(len(idx), dtype=torch.long))
            t = torch.full((len(idx),), self.diffusion.num_steps - 1)
            with torch.no_grad():
                x = self.diffusion.denoiser(model)(torch.randn(real.shape, generator=generator), t, **cond).clamp(-1, 1)
            rows = [real, x]
        elif self.low_size:
            low = self._low(real)
            x = run_upsampler(comp, low, **kw, steps=20, generator=generator)  # low-res UNets: the upsampler's sampling
            rows = [F.interpolate(low, size=real.shape[-2:], mode="nearest"), x, real]
        else:
            x = run_decoder(comp, self.embeds[idx] if self.embeds is not None else None, **kw, steps=25, guidance=3.0, generator=generator)
            rows = [real, x]
        save_grid(torch.cat(rows), out_dir / f"step-{step:08d}.png", rows=len(rows))
        return {"preview_mse": float(F.mse_loss(x, real))}


def _rows_with_text(cond: dict, rows: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> dict:
    """The model's conditions of `rows`, with their text replaced by other token states."""
    return {**{k: v[rows] for k, v in cond.items()}, "tokens": tokens[rows], "token_mask": mask[rows]}
