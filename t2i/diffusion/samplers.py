"""Samplers: pure functions of a denoiser, a starting point and a list of timesteps.

A *denoiser* is `denoise(x_t (B, ...), t LongTensor (B,)) -> x0_hat (B, ...)` where t
indexes the TRAINING schedule (0..T-1). A sampler walks a strictly descending list of
kept training timesteps [t_0 > t_1 > ... > t_{n-1}]; between consecutive kept steps
t > s it uses the respaced chain whose one-step ᾱ ratio is ᾱ_t / ᾱ_s, and after the
last kept step it jumps to s = -1 with ᾱ_{-1} = 1, i.e. it returns the final x0_hat.

Nothing is kept between calls: the same inputs and an identically seeded generator
give identical outputs. Each noisy step draws exactly one `torch.randn` of x's shape
and dtype from `generator` (on the generator's device), or one per row from per-row
generators (t2i.diffusion.noise.RowGenerators), so runs are reproducible.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from t2i.errors import InputError

from .gaussian import randn_like
from .noise import Generator
from .solvers import SOLVERS, SPACINGS, noise_levels
from .walk import Denoiser, Progress, Tensor, denoise_at, prepare


def respace(num_train_steps: int, num_sample_steps: int) -> list[int]:
    """Evenly spaced training timesteps, descending, from T-1 down to 0.

    With num_sample_steps == T this is exactly [T-1, ..., 0]; with 1 it is [T-1].
    """
    if not isinstance(num_train_steps, int) or num_train_steps < 1:
        raise InputError(f"num_train_steps must be a positive int, got {num_train_steps!r}")
    if not isinstance(num_sample_steps, int) or not 1 <= num_sample_steps <= num_train_steps:
        raise InputError(f"num_sample_steps must be an int in [1, {num_train_steps}], got {num_sample_steps!r}")
    if num_sample_steps == 1:
        return [num_train_steps - 1]
    # round(i (T-1) / (n-1)) in exact integer arithmetic (half rounds up); the spacing is
    # >= 1 because n <= T, so the steps are distinct.
    span, gaps = num_train_steps - 1, num_sample_steps - 1
    ascending = [(2 * i * span + gaps) // (2 * gaps) for i in range(num_sample_steps)]
    return ascending[::-1]


def ddpm_sample(denoise: Denoiser, x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, *,
                generator: Generator = None, progress: Progress | None = None) -> Tensor:
    """Ancestral sampling (Ho et al. 2020) over `timesteps`; returns x0 (B, ...).

    Between kept steps t > s the respaced chain has β' = 1 - ᾱ_t/ᾱ_s and the step draws
    from its posterior q(x_s | x_t, x0_hat):
        mean = sqrt(ᾱ_s) β'/(1-ᾱ_t) x0_hat + sqrt(1-β') (1-ᾱ_s)/(1-ᾱ_t) x_t
        var  = β' (1-ᾱ_s)/(1-ᾱ_t)
    The last step returns x0_hat without noise. `progress(done, total)` is called per step.
    """
    steps, ac = prepare(x_T, timesteps, alphas_cumprod)
    x = x_T
    for i, t in enumerate(steps):
        x0 = denoise_at(denoise, x, t)
        if i == len(steps) - 1:
            x = x0
        else:
            ab_t, ab_s = ac[t], ac[steps[i + 1]]
            beta = 1.0 - ab_t / ab_s
            coef_x0 = math.sqrt(ab_s) * beta / (1.0 - ab_t)
            coef_xt = math.sqrt(1.0 - beta) * (1.0 - ab_s) / (1.0 - ab_t)
            std = math.sqrt(beta * (1.0 - ab_s) / (1.0 - ab_t))
            x = coef_x0 * x0 + coef_xt * x + std * randn_like(x, generator=generator)
        if progress is not None:
            progress(i + 1, len(steps))
    return x


def ddim_sample(denoise: Denoiser, x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, *,
                eta: float = 0.0, generator: Generator = None,
                progress: Progress | None = None) -> Tensor:
    """DDIM (Song et al. 2021) over `timesteps`; returns x0 (B, ...).

    With eps_hat = (x_t - sqrt(ᾱ_t) x0_hat)/sqrt(1-ᾱ_t) and
    σ = η sqrt((1-ᾱ_s)/(1-ᾱ_t)) sqrt(1 - ᾱ_t/ᾱ_s), a step t -> s is
        x_s = sqrt(ᾱ_s) x0_hat + sqrt(1-ᾱ_s-σ²) eps_hat + σ z.
    η = 0 is deterministic; η = 1 has exactly the ancestral (DDPM) transition.
    """
    if not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta < 0.0:
        raise InputError(f"eta must be a finite float >= 0, got {eta!r}")
    steps, ac = prepare(x_T, timesteps, alphas_cumprod)
    x = x_T
    for i, t in enumerate(steps):
        x0 = denoise_at(denoise, x, t)
        if i == len(steps) - 1:
            x = x0
        else:
            ab_t, ab_s = ac[t], ac[steps[i + 1]]
            eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1.0 - ab_t)
            sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
            # Rounding (or η > 1) can push this below zero; the direction term then vanishes.
            dir_coef = math.sqrt(max(1.0 - ab_s - sigma ** 2, 0.0))
            x = math.sqrt(ab_s) * x0 + dir_coef * eps
            if sigma > 0.0:
                x = x + sigma * randn_like(x, generator=generator)
        if progress is not None:
            progress(i + 1, len(steps))
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {"ddpm": ddpm_sample, "ddim": ddim_sample}  # walk ᾱ ratios between kept timesteps
ALL_SAMPLERS: dict[str, Callable[..., Tensor]] = {**SAMPLERS, **SOLVERS}  # with the solvers, which walk noise levels


def sample(name: str, denoise: Denoiser, x_T: Tensor, *, num_train_steps: int, steps: int,
           alphas_cumprod: Tensor, eta: float = 0.0, spacing: str = "uniform", generator: Generator = None,
           progress: Progress | None = None) -> Tensor:
    """Pick `steps` timesteps by `spacing` and run sampler `name` (a key of ALL_SAMPLERS).

    x_T (B, ...) should be standard normal noise; returns x0 (B, ...). DDIM and DDPM keep their
    uniform spacing from T-1 down to 0 (`respace`); the solvers take `noise_levels`. `eta`
    applies to DDIM only (DDPM is DDIM with η = 1), so a non-zero eta elsewhere is an error.
    """
    if name not in ALL_SAMPLERS:
        raise InputError(f"sampler must be one of {', '.join(ALL_SAMPLERS)}, got {name!r}")
    if spacing not in SPACINGS:
        raise InputError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    if alphas_cumprod.ndim != 1 or alphas_cumprod.shape[0] != num_train_steps:
        raise ValueError(f"alphas_cumprod has shape {tuple(alphas_cumprod.shape)}, "
                         f"expected ({num_train_steps},)")
    if eta != 0.0 and name != "ddim":
        raise InputError("eta only applies to the 'ddim' sampler")
    kw = {"generator": generator, "progress": progress}
    if name in SAMPLERS:
        if spacing == "karras":
            raise InputError(f"karras spacing sets noise levels, which {name} does not walk: use one of {', '.join(SOLVERS)}")
        timesteps = respace(num_train_steps, steps) if spacing == "uniform" else noise_levels(alphas_cumprod, steps, spacing, lambda_min=None)[0]
        return ddim_sample(denoise, x_T, timesteps, alphas_cumprod, eta=eta, **kw) if name == "ddim" else ddpm_sample(denoise, x_T, timesteps, alphas_cumprod, **kw)
    timesteps, levels = noise_levels(alphas_cumprod, steps, spacing)
    return SOLVERS[name](denoise, x_T, timesteps, alphas_cumprod, levels=levels, **kw)
