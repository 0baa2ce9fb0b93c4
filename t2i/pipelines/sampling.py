"""Sampling of each stage of every system, shared by the pipelines and by training previews.

Each function takes a loaded Component and plain tensors, builds a denoiser from the
component's diffusion settings, wraps it with classifier-free guidance and thresholding, and
runs a pure sampler from t2i.diffusion.samplers. `sample_unet` is any UNet under one condition
(and its null for guidance); run_decoder is a UNet read with an image embedding and/or text
(unCLIP's decoder, a text-only base UNet), run_upsampler one that reads a low-resolution image.
Sampling of a system's own kinds of model (unCLIP's prior) lives in its package.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from t2i.checkpoint import CheckpointError, Component
from t2i.config import config_from_dict
from t2i.data.dataset import to_model_range
from t2i.diffusion.config import DiffusionConfig
from t2i.diffusion.experts import expert_denoiser
from t2i.diffusion.gaussian import GaussianDiffusion
from t2i.diffusion.guidance import chained_guidance, thresholded
from t2i.diffusion.noise import randn
from t2i.diffusion.samplers import ALL_SAMPLERS, sample
from t2i.errors import InputError


@torch.no_grad()
def clip_image_embeds(clip: Component, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> (N, E) unit-norm CLIP image embeddings, on the model's device."""
    device = next(clip.model.parameters()).device
    out = [clip.model.encode_image(to_model_range(images[i : i + batch]).to(device)) for i in range(0, len(images), batch)]
    return torch.cat(out)


def diffusion_config(component: Component) -> DiffusionConfig:
    """The component's typed diffusion settings; an unknown key is an error, not a default."""
    return config_from_dict(DiffusionConfig, component.settings.get("diffusion", {}), where=f"{component.role} settings.diffusion")


def diffusion_of(component: Component) -> GaussianDiffusion:
    return diffusion_config(component).build()


def sample_chain(component, denoise_with_cond, conds, scales, shape, *, steps, sampler, threshold, generator, progress=None, start=None, spacing="uniform",
                 experts=()):
    """Sample `shape` from pure noise over `steps` respaced steps, or, with start = (x, timesteps),
    from that partly noised x over those timesteps. conds runs from the null condition to the
    full one, with one guidance scale per step (see chained_guidance). `experts` are components
    trained on diffusion steps from their `min_step` up (high-noise experts): each takes the
    steps of its range, the component those below the first expert's."""
    if component.settings.get("min_step"):
        raise InputError(f"this {component.role} was trained on diffusion steps {component.settings['min_step']} and up only (options.min_step): "
                         "it cannot sample a whole chain alone (give it as an expert beside a model trained on every step)")
    diffusion = diffusion_of(component)
    denoise = chained_guidance(diffusion.denoiser(denoise_with_cond), conds, scales)
    if experts:
        check_experts(component, experts)
        denoise = expert_denoiser([(0, denoise)] + [(int(e.settings["min_step"]), chained_guidance(diffusion.denoiser(e.model), conds, scales)) for e in experts])
    denoise = thresholded(denoise, threshold)
    if start is not None:
        x, timesteps = start
        return ALL_SAMPLERS[sampler](denoise, x, timesteps, diffusion.alphas_cumprod, generator=generator, progress=progress)
    device = next(component.model.parameters()).device
    x_T = randn(shape, generator, device=device)
    return sample(sampler, denoise, x_T, num_train_steps=diffusion.num_steps, steps=steps, alphas_cumprod=diffusion.alphas_cumprod, spacing=spacing,
                  generator=generator, progress=progress)


def check_experts(component: Component, experts) -> None:
    """High-noise experts fit beside `component`: each trained from its own min_step up, on the
    same diffusion (schedule, objective) and the same inputs and outputs."""
    starts = [int(e.settings.get("min_step", 0)) for e in experts]
    if not all(starts) or len(set(starts)) != len(starts):
        raise CheckpointError(f"each expert must be trained from its own step up (options.min_step); these start at {starts}")
    if any(diffusion_config(e) != diffusion_config(component) for e in experts):
        raise CheckpointError(f"an expert of this {component.role} was trained on another diffusion (schedule, steps or objective)")
    keys = ("image_size", "in_channels", "out_channels", "text_dim", "low_res", "embed_dim")
    mine = {k: getattr(component.model.config, k, None) for k in keys}
    for e in experts:
        theirs = {k: getattr(e.model.config, k, None) for k in keys}
        if theirs != mine:
            raise CheckpointError(f"an expert of this {component.role} reads or makes something else: {theirs} against {mine}")


@torch.no_grad()
def sample_unet(unet: Component, cond: dict, *, null: dict | None = None, guidance: float = 1.0, steps: int = 25, sampler: str = "ddim",
                spacing: str = "uniform", threshold: str = "static", generator=None, progress=None, experts=(), toward: dict | None = None,
                toward_weight: float = 0.0) -> torch.Tensor:
    """Images (B, C, S, S) in [-1, 1] from pure noise under `cond` (the UNet's keyword inputs,
    B rows each), guided by `guidance` away from `null` (1 = no guidance, no null needed);
    `experts` take the noisiest steps (see sample_chain); `toward`, a second condition, takes
    `toward_weight` of the conditional prediction (see steered)."""
    cfg = unet.model.config
    b = len(next(v for v in cond.values() if v is not None))
    if null is None and guidance != 1.0:
        raise ValueError("guidance needs the null condition")
    conds, scales = steered([cond if null is None else null, cond], [guidance], toward, toward_weight)  # at guidance 1 only cond is evaluated
    shape = (b, cfg.out_channels, cfg.image_size, cfg.image_size)
    return sample_chain(unet, unet.model, conds, scales, shape, steps=steps, sampler=sampler, spacing=spacing, threshold=threshold, generator=generator,
                progress=progress, experts=experts).clamp(-1, 1)


def steered(conds: list[dict], scales: list[float], toward: dict | None, weight: float) -> tuple[list[dict], list[float]]:
    """A guidance chain that ends at condition c, with scale g, extended so that the guided
    prediction reads `toward` (c') for `weight` w of c:

        x0 = x0(null) + g·((1 - w)·x0(c) + w·x0(c') - x0(null))

    (one more step of the chain, scale g·w). At w = 1 the chain telescopes to c' alone and costs
    nothing extra; at 0 it is the chain as given."""
    if toward is None or weight == 0:
        return conds, scales
    if not 0 < weight <= 1:
        raise InputError(f"the weight of the second condition must be between 0 and 1, got {weight}")
    return [*conds, toward], [*scales, scales[-1] * weight]


def text_conditions(tokens: torch.Tensor, token_mask: torch.Tensor) -> tuple[dict, dict]:
    """A caption's condition and its null (the same tokens, all masked: what a dropped caption is in training)."""
    return {"tokens": tokens, "token_mask": token_mask}, {"tokens": tokens, "token_mask": torch.zeros_like(token_mask)}


def padded_tokens(tokens: torch.Tensor, token_mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states (B, T, D) and mask (B, T) padded to `length` positions with masked zeros (which a
    UNet ignores), so that two captions' conditions stack into one batch."""
    extra = length - tokens.shape[1]
    if extra <= 0:
        return tokens, token_mask
    return F.pad(tokens, (0, 0, 0, extra)), F.pad(token_mask, (0, extra), value=False)


def keep_best(candidates: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Candidates (B, k, ...) -> (B, ...): per row, the one with the largest score in scores (B, k)."""
    return candidates[torch.arange(len(candidates)), scores.argmax(dim=1)]


@torch.no_grad()
def run_decoder(decoder: Component, embed, tokens=None, token_mask=None, *, steps=25, guidance=3.0, text_guidance=None, sampler="ddim", spacing="uniform", threshold="static",
                generator=None, progress=None, use_embed=True):
    """CLIP image embeddings (B, E) (+ optional text tokens) -> images (B, 3, S, S) in [-1, 1].

    guidance scales the whole condition; with text_guidance set (and a decoder that reads text),
    guidance scales the embedding alone and text_guidance what the caption adds on top of it,
    at three model evaluations per step instead of two. use_embed=False conditions on the text
    tokens alone: the embedding is replaced by the decoder's learned null embedding (what
    training's dropped embeddings see) in every branch."""
    cfg = decoder.model.config
    b = len(embed) if embed is not None else len(tokens)  # a UNet without image embeddings reads text alone
    device = embed.device if embed is not None else tokens.device
    keep = torch.ones(b, dtype=torch.bool, device=device)
    cond = {"embed": embed, "embed_keep": keep if use_embed else ~keep}
    null = {"embed": embed, "embed_keep": ~keep}
    if cfg.text_dim:
        if tokens is None:  # no caption (variations, interpolation): the decoder's "no text" condition
            tokens = embed.new_zeros(b, 1, cfg.text_dim)
            token_mask = torch.zeros(b, 1, dtype=torch.bool, device=device)
        cond.update(tokens=tokens, token_mask=token_mask)
        null.update(tokens=tokens, token_mask=torch.zeros_like(token_mask))
    conds, scales = [null, cond], [guidance]
    if cfg.text_dim and text_guidance is not None:
        conds, scales = [null, {**cond, "token_mask": null["token_mask"]}, cond], [guidance, text_guidance]
    shape = (b, cfg.out_channels, cfg.image_size, cfg.image_size)
    x = sample_chain(decoder, decoder.model, conds, scales, shape, steps=steps, sampler=sampler, spacing=spacing, threshold=threshold, generator=generator, progress=progress)
    return x.clamp(-1, 1)


@torch.no_grad()
def run_upsampler(upsampler: Component, low_res, tokens=None, token_mask=None, *, steps=20, guidance=1.0, aug_level=None, sampler="ddim", spacing="uniform",
                  threshold="static", generator=None, progress=None, toward_tokens=None, toward_weight=0.0):
    """Images (B, 3, s, s) in [-1, 1] (+ the caption, for an upsampler that reads it) -> (B, 3, S, S).

    The low-res conditioning is noised to diffusion step `aug_level` (default: the component's
    `sample_aug_level`), and the upsampler is told the step (noise-conditioning augmentation).
    `guidance` guides the caption (the low-res image stays in both branches). With the
    component's `sample_start_level` L (0 < L < T), sampling starts from the resized low-res
    image noised to level L instead of from pure noise
    (a truncated chain, as SDEdit): cheaper, and safe while an upsampler is still weak at
    high noise levels. toward_tokens, (tokens, mask) of a second caption, take `toward_weight`
    of the conditional prediction (see steered).
    """
    cfg = upsampler.model.config
    diffusion = diffusion_of(upsampler)
    device = low_res.device
    level = int(upsampler.settings.get("sample_aug_level", 0)) if aug_level is None else int(aug_level)
    if not 0 <= level < diffusion.num_steps:
        raise InputError(f"the augmentation level must be a diffusion step from 0 to {diffusion.num_steps - 1}, got {level}")
    aug = torch.full((len(low_res),), level, dtype=torch.long, device=device)
    noise = randn(low_res.shape, generator, device=device)
    low = diffusion.q_sample(low_res, aug, noise) if level > 0 else low_res
    cond = {"low_res": low, "aug_level": aug}
    null = None
    if tokens is not None:  # an upsampler that reads the caption too
        text, no_text = text_conditions(tokens, token_mask)
        cond.update(text)
        null = {**cond, **no_text}
    elif guidance != 1.0:
        raise InputError("guidance needs an upsampler that reads the caption")
    shape = (len(low_res), cfg.out_channels, cfg.image_size, cfg.image_size)
    start = None
    level_0 = int(upsampler.settings.get("sample_start_level", 0))
    if 0 < level_0 < diffusion.num_steps:
        timesteps = sorted({round(level_0 * (1 - i / max(1, steps - 1))) for i in range(steps)}, reverse=True)
        resized = F.interpolate(low_res, size=shape[-2:], mode="bicubic", align_corners=False).clamp(-1, 1)
        t0 = torch.full((len(low_res),), timesteps[0], dtype=torch.long, device=device)
        start = (diffusion.q_sample(resized, t0, randn(shape, generator, device=device)), timesteps)
    toward = None
    if toward_tokens is not None and tokens is not None:
        toward = {**cond, **text_conditions(*toward_tokens)[0]}
    conds, scales = steered([cond if null is None else null, cond], [guidance], toward, toward_weight)
    x = sample_chain(upsampler, upsampler.model, conds, scales, shape, steps=steps, sampler=sampler, spacing=spacing, threshold=threshold, generator=generator,
             progress=progress, start=start)
    return x.clamp(-1, 1)
