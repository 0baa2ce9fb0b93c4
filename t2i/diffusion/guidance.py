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
from collections.abc import Callable, Mapping, Sequence

import torch

from t2i.errors import InputError

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
    return chained_guidance(denoise_with_cond, [null_cond, cond], [scale])


def chained_guidance(denoise_with_cond: Denoiser, conds: Sequence[Cond], scales: Sequence[float]) -> Denoiser:
    """Guidance along a chain of ever richer conditions, one scale per added part:

        x0 = x0(c_0) + Σ_i scales[i]·(x0(c_{i+1}) - x0(c_i))

    c_0 is the null condition. With conds = [null, image embedding only, embedding + text] this
    steers towards the embedding and towards the caption with separate strengths (the two-scale
    form of InstructPix2Pix, Brooks et al. 2023). Equal scales telescope to plain guidance
    x0(c_0) + s·(x0(c_n) - x0(c_0)), so then only the two ends are evaluated, and with s = 1
    only c_n. All evaluated conditions go through the model as one concatenated batch.
    """
    if len(conds) != len(scales) + 1 or not scales:
        raise ValueError(f"need one scale per step of the chain: {len(conds)} conditions, {len(scales)} scales")
    for scale in scales:
        if not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise InputError(f"scale must be a finite float, got {scale!r}")
    for c in conds[1:]:
        _check_cond(c, conds[0])
    conds = [dict(c) for c in conds]  # later edits by the caller cannot leak in
    if all(s == scales[0] for s in scales):
        conds, scales = [conds[0], conds[-1]], [scales[0]]
    if scales == [1]:
        conds = conds[-1:]

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        batch = x.shape[0]
        for i, c in enumerate(conds):
            _check_batch(c, batch, "cond" if i == len(conds) - 1 else "null_cond" if i == 0 else f"conds[{i}]")
        k = len(conds)
        if k == 1:
            return denoise_with_cond(x, t, **conds[0])
        stacked = {key: None if conds[0][key] is None else torch.cat([c[key] for c in conds]) for key in conds[0]}
        x0 = denoise_with_cond(x.repeat(k, *([1] * (x.ndim - 1))), t.repeat(k), **stacked)
        if x0.shape[0] != k * batch:
            raise ValueError(f"denoise_with_cond returned batch {x0.shape[0]}, expected {k * batch}")
        parts = x0.chunk(k)
        out = parts[0]
        for scale, lo, hi in zip(scales, parts[:-1], parts[1:]):
            out = out + scale * (hi - lo)
        return out

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
        raise InputError(f"percentile must be in (0, 1], got {percentile!r}")
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
        raise InputError(f"threshold kind must be one of {THRESHOLDS}, got {kind!r}")
    if kind == "none":
        return denoise
    clip = static_threshold if kind == "static" else dynamic_threshold

    def wrapped(x: Tensor, t: Tensor, **kwargs) -> Tensor:
        return clip(denoise(x, t, **kwargs))

    return wrapped
