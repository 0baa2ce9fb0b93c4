"""Wrappers around a denoiser: classifier-free guidance and x0 thresholding.

Each wrapper takes a denoiser and returns another, so they compose freely with each
other and with any sampler, e.g.

    denoise = thresholded(guided_denoiser(diffusion.denoiser(model), cond, null, scale=3.0),
                          kind="dynamic")

Guidance is applied to x0 predictions. For a fixed x_t, the maps from an eps, x0 or v
output to x0 are affine with the same offset, so mixing in x0 space equals mixing in
the model's own output space.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping

import torch

Tensor = torch.Tensor
Denoiser = Callable[..., Tensor]
Cond = Mapping[str, "Tensor | None"]

THRESHOLDS = ("none", "static", "dynamic")


def _check_cond(cond: Cond, null_cond: Cond) -> None:
    if set(cond) != set(null_cond):
        raise ValueError(f"cond and null_cond must have the same keys, got {sorted(cond)} and {sorted(null_cond)}")
    for key in cond:
        if (cond[key] is None) != (null_cond[key] is None):
            raise ValueError(f"cond[{key!r}] and null_cond[{key!r}] must both be tensors or both None")


def _check_batch(cond: Cond, batch: int, what: str) -> None:
    for key, value in cond.items():
        if value is not None and (value.ndim == 0 or value.shape[0] != batch):
            raise ValueError(f"{what}[{key!r}] must have batch dim {batch}, got shape {tuple(value.shape)}")


def guided_denoiser(denoise_with_cond: Denoiser, cond: Cond, null_cond: Cond, scale: float) -> Denoiser:
    """Classifier-free guidance: x0_u + scale·(x0_c - x0_u).

    denoise_with_cond(x (B, ...), t (B,), **cond) -> x0 (B, ...). Every tensor in `cond`
    and `null_cond` has batch dim B; None values pass through as None. With scale == 1
    only the conditional batch is evaluated; otherwise the conditional and unconditional
    batches are concatenated into one call of batch 2B and split afterwards.
    """
    if not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite float, got {scale!r}")
    _check_cond(cond, null_cond)
    cond, null_cond = dict(cond), dict(null_cond)  # later edits by the caller cannot leak in

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0]
        _check_batch(cond, batch, "cond")
        if scale == 1:
            return denoise_with_cond(x, t, **cond)
        _check_batch(null_cond, batch, "null_cond")
        both = {k: None if v is None else torch.cat([v, null_cond[k]]) for k, v in cond.items()}
        x0 = denoise_with_cond(torch.cat([x, x]), torch.cat([t, t]), **both)
        if x0.shape[0] != 2 * batch:
            raise ValueError(f"denoise_with_cond returned batch {x0.shape[0]}, expected {2 * batch}")
        x0_c, x0_u = x0.chunk(2)
        return x0_u + scale * (x0_c - x0_u)

    return denoise


def static_threshold(x0: Tensor) -> Tensor:
    """Clamp x0 (B, ...) to the data range [-1, 1]."""
    return x0.clamp(-1.0, 1.0)


def dynamic_threshold(x0: Tensor, percentile: float = 0.995) -> Tensor:
    """Imagen's dynamic thresholding of x0 (B, ...).

    Per sample, s = max(1, quantile(|x0|, percentile)); x0 is clamped to [-s, s] and
    divided by s, which pulls saturated pixels inward instead of clipping them flat.
    """
    if not isinstance(percentile, (int, float)) or not 0.0 < percentile <= 1.0:
        raise ValueError(f"percentile must be in (0, 1], got {percentile!r}")
    if x0.ndim < 2:
        raise ValueError(f"x0 must be (B, ...) with at least one non-batch dim, got {tuple(x0.shape)}")
    # quantile needs float32/64; half precision inputs are measured in float32.
    flat = x0.detach().reshape(x0.shape[0], -1).abs().float()
    s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).to(x0.dtype)
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


def thresholded(denoise: Denoiser, kind: str) -> Denoiser:
    """Wrap `denoise` so its x0 is thresholded: kind in {"none", "static", "dynamic"}."""
    if kind not in THRESHOLDS:
        raise ValueError(f"threshold kind must be one of {THRESHOLDS}, got {kind!r}")
    if kind == "none":
        return denoise
    clip = static_threshold if kind == "static" else dynamic_threshold

    def wrapped(x: Tensor, t: Tensor, **kwargs) -> Tensor:
        return clip(denoise(x, t, **kwargs))

    return wrapped
