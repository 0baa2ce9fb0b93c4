"""Few-step samplers of the diffusion ODE and SDE, pure functions in the style of samplers.py.

They walk noise levels rather than ᾱ ratios. A level is the variance-exploding sigma
s = sqrt((1-ᾱ)/ᾱ); x_t = α x0 + σ ε with α = 1/sqrt(1+s²), σ = s α (the variance-preserving
form the models are trained in), and λ = log(α/σ) = -log s. A sampler gets the training timesteps
at which the denoiser is called, strictly descending, and their levels (by default those of the
timesteps; Karras spacing gives its own, the model then seeing the nearest timestep), and ends at
level 0, which returns the last x0 estimate.

- DPM-Solver++(2M) (Lu et al. 2022): multistep, second order in λ, first order at the first and
  the last step; `sde=True` is its stochastic form, DPM-Solver++(2M) SDE.
- UniPC with the bh2 predictor-corrector (Zhao et al. 2023), second order.
- Euler ancestral (Karras et al. 2022 / k-diffusion), in sigma space.

Each agrees with the diffusers scheduler of the same name on the same denoiser and timesteps
(tests/test_solvers.py). `noise_levels` gives timesteps and levels for a spacing: uniform (the
diffusers "linspace" one), trailing or karras (ρ = 7). On a cosine schedule λ at the last
timesteps falls to about -10 and a first step from there lands far off: the levels start at
λ >= LAMBDA_MIN (diffusers' lambda_min_clipped -5.1), which leaves a linear schedule as it is.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from t2i.errors import InputError

from .gaussian import randn_like
from .noise import Generator
from .walk import Denoiser, Progress, Tensor, denoise_at, prepare

SPACINGS = ("uniform", "trailing", "karras")
LAMBDA_MIN = -5.1
KARRAS_RHO = 7.0


def _sigmas_of(alphas_cumprod: Tensor) -> np.ndarray:
    ac = alphas_cumprod.detach().to("cpu", torch.float64).numpy()
    return np.sqrt((1.0 - ac) / ac)


def noise_levels(alphas_cumprod: Tensor, steps: int, spacing: str = "uniform", lambda_min: float | None = LAMBDA_MIN) -> tuple[list[int], list[float]]:
    """`steps` training timesteps, descending, and their levels (one more: the final 0)."""
    if spacing not in SPACINGS:
        raise InputError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    sigmas = _sigmas_of(alphas_cumprod)
    num_train = len(sigmas)
    if not isinstance(steps, int) or not 1 <= steps <= num_train:
        raise InputError(f"steps must be a whole number from 1 to {num_train}, got {steps!r}")
    last = num_train  # timesteps below `last` keep lambda >= lambda_min
    if lambda_min is not None:
        last = num_train - int(np.searchsorted(-np.log(sigmas)[::-1], lambda_min))
    if spacing == "karras":
        lo, hi = sigmas[0] ** (1 / KARRAS_RHO), sigmas[last - 1] ** (1 / KARRAS_RHO)
        levels = (hi + np.linspace(0, 1, steps) * (lo - hi)) ** KARRAS_RHO
        timesteps = [int(round(t)) for t in _sigma_to_t(levels, np.log(sigmas))]
    else:
        if spacing == "uniform":
            timesteps = np.linspace(0, last - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        else:
            timesteps = np.arange(last, 0, -num_train / steps).round().astype(np.int64) - 1
        timesteps = [int(t) for t in timesteps]
        levels = sigmas[timesteps]
    if len(set(timesteps)) != len(timesteps):  # karras on few training steps can repeat one
        raise InputError(f"{steps} {spacing} steps repeat a training timestep; use fewer steps")
    return timesteps, [float(s) for s in levels] + [0.0]


def _sigma_to_t(levels: np.ndarray, log_sigmas: np.ndarray) -> np.ndarray:
    """Fractional training timesteps of the given levels, by linear interpolation in log sigma."""
    log_level = np.log(np.maximum(levels, 1e-10))
    dists = log_level - log_sigmas[:, None]
    low = np.cumsum(dists >= 0, axis=0).argmax(axis=0).clip(max=len(log_sigmas) - 2)
    w = np.clip((log_sigmas[low] - log_level) / (log_sigmas[low] - log_sigmas[low + 1]), 0, 1)
    return (1 - w) * low + w * (low + 1)


def _levels(x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, levels: Sequence[float] | None) -> tuple[list[int], list[float]]:
    steps, _ = prepare(x_T, timesteps, alphas_cumprod)
    if levels is None:
        levels = [float(s) for s in _sigmas_of(alphas_cumprod)[steps]] + [0.0]
    levels = [float(s) for s in levels]
    if len(levels) != len(steps) + 1 or levels[-1] != 0.0 or any(a <= b for a, b in zip(levels, levels[1:])):
        raise ValueError("levels must be one per timestep, strictly descending, then a final 0")
    return steps, levels


def _alpha_sigma(level: float) -> tuple[float, float]:
    alpha = 1.0 / math.sqrt(level * level + 1.0)
    return alpha, level * alpha


def _lam(level: float) -> float:
    return -math.log(level) if level > 0 else math.inf


def dpmpp_2m_sample(denoise: Denoiser, x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, *, levels: Sequence[float] | None = None,
                    sde: bool = False, generator: Generator = None, progress: Progress | None = None) -> Tensor:
    """DPM-Solver++(2M), or with sde=True DPM-Solver++(2M) SDE, over `timesteps`; returns x0.

    With h = λ_next - λ, D = x0 (first order) or x0 + (x0 - x0_prev)/(2r), r = h_prev/h:
        ODE: x_next = (σ_next/σ) x - α_next (e^{-h} - 1) D
        SDE: x_next = (σ_next/σ) e^{-h} x + α_next (1 - e^{-2h}) D + σ_next sqrt(1 - e^{-2h}) z
    The SDE draws its z at every step, the last included (where σ_next = 0 cancels it)."""
    steps, levels = _levels(x_T, timesteps, alphas_cumprod, levels)
    x, previous = x_T, None  # previous: (x0, h) of the step before
    for i, t in enumerate(steps):
        x0 = denoise_at(denoise, x, t)
        noise = randn_like(x, generator=generator) if sde else None
        level, nxt = levels[i], levels[i + 1]
        (_, sigma), (alpha_n, sigma_n) = _alpha_sigma(level), _alpha_sigma(nxt)
        h = _lam(nxt) - _lam(level)
        d = x0
        if previous is not None and nxt > 0:  # second order, except at the first and the last step
            x0_prev, h_prev = previous
            d = x0 + 0.5 * (h / h_prev) * (x0 - x0_prev)
        if nxt == 0:
            x = x0
        elif sde:
            x = (sigma_n / sigma * math.exp(-h)) * x + alpha_n * (-math.expm1(-2 * h)) * d + sigma_n * math.sqrt(-math.expm1(-2 * h)) * noise
        else:
            x = (sigma_n / sigma) * x - alpha_n * math.expm1(-h) * d
        previous = (x0, h)
        if progress is not None:
            progress(i + 1, len(steps))
    return x


def euler_ancestral_sample(denoise: Denoiser, x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, *, levels: Sequence[float] | None = None,
                           generator: Generator = None, progress: Progress | None = None) -> Tensor:
    """Euler ancestral over `timesteps`; returns x0. In sigma space (z = x/α), a step from s to
    s_next goes by Euler down to s_down and adds noise of std s_up, s_down² + s_up² = s_next²:
        s_up = s_next sqrt(1 - s_next²/s²),  z_next = z + (z - x0)/s (s_down - s) + s_up ε."""
    steps, levels = _levels(x_T, timesteps, alphas_cumprod, levels)
    z = x_T / _alpha_sigma(levels[0])[0]
    for i, t in enumerate(steps):
        level, nxt = levels[i], levels[i + 1]
        x0 = denoise_at(denoise, z * _alpha_sigma(level)[0], t)
        up = nxt * math.sqrt(max(0.0, 1.0 - (nxt / level) ** 2))
        down = math.sqrt(max(0.0, nxt * nxt - up * up))
        z = z + (z - x0) / level * (down - level) + up * randn_like(z, generator=generator)
        if progress is not None:
            progress(i + 1, len(steps))
    return z


def unipc_sample(denoise: Denoiser, x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor, *, levels: Sequence[float] | None = None,
                 generator: Generator = None, progress: Progress | None = None) -> Tensor:
    """UniPC (bh2), second order, over `timesteps`; returns x0. Each step predicts x_next from
    the last two x0 estimates (UniP), then, once the model has seen x_next, corrects it with
    the new estimate (UniC) before going on; no correction after the last step, first order at
    the first and the last (as diffusers' lower_order_final for fewer than 15 steps)."""
    steps, levels = _levels(x_T, timesteps, alphas_cumprod, levels)
    n = len(steps)
    x, history, last = x_T, [], None  # history: (x0, λ) of the evaluated steps; last: what the corrector needs
    for i, t in enumerate(steps):
        x0 = denoise_at(denoise, x, t)
        if last is not None:  # UniC: correct the x the previous step predicted, using this x0
            x = _unic(last, x0)
        history.append((x0, _lam(levels[i])))
        order = 1 if i == 0 or i == n - 1 else 2
        x_pred = _unip(x, history[-order:], levels[i], levels[i + 1]) if levels[i + 1] > 0 else x0
        last = (x, history[-order:], levels[i], levels[i + 1]) if levels[i + 1] > 0 else None
        x = x_pred
        if progress is not None:
            progress(i + 1, len(steps))
    return x


def _unip(x: Tensor, history: list, level: float, nxt: float) -> Tensor:
    """UniP-bh2: the predictor from x at `level` to `nxt`, with history [(x0, λ), ...] (last = now)."""
    (_, sigma), (alpha_n, sigma_n) = _alpha_sigma(level), _alpha_sigma(nxt)
    x0, lam = history[-1]
    h = _lam(nxt) - lam
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = math.expm1(hh)  # bh2
    x_t = sigma_n / sigma * x - alpha_n * h_phi_1 * x0
    if len(history) == 2:
        x0_prev, lam_prev = history[0]
        rk = (lam_prev - lam) / h
        d1 = (x0_prev - x0) / rk
        x_t = x_t - alpha_n * b_h * 0.5 * d1  # rhos_p = 0.5 for order 2
    return x_t


def _unic(last: tuple, x0_new: Tensor) -> Tensor:
    """UniC-bh2: correct the predicted x (made from `last`'s history) with the model's new x0."""
    x, history, level, nxt = last
    (_, sigma), (alpha_n, sigma_n) = _alpha_sigma(level), _alpha_sigma(nxt)
    x0, lam = history[-1]
    h = _lam(nxt) - lam
    hh = -h
    h_phi_1 = math.expm1(hh)
    h_phi_k = h_phi_1 / hh - 1.0
    b_h = math.expm1(hh)
    rks, bs = [], []
    if len(history) == 2:
        x0_prev, lam_prev = history[0]
        rks.append((lam_prev - lam) / h)
    rks.append(1.0)
    factorial = 1
    for k in range(1, len(rks) + 1):
        bs.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    d1s = [(history[0][0] - x0) / rks[0]] if len(history) == 2 else []
    if len(rks) == 1:
        rhos_c = [0.5]
    else:
        r = np.array([[1.0, 1.0], rks])
        rhos_c = np.linalg.solve(r, np.array(bs)).tolist()
    corr = sum(rho * d for rho, d in zip(rhos_c[:-1], d1s))
    d1_t = x0_new - x0
    x_t = sigma_n / sigma * x - alpha_n * h_phi_1 * x0
    return x_t - alpha_n * b_h * (corr + rhos_c[-1] * d1_t)


SOLVERS = {"dpmpp-2m": dpmpp_2m_sample, "dpmpp-2m-sde": functools.partial(dpmpp_2m_sample, sde=True), "unipc": unipc_sample, "euler-a": euler_ancestral_sample}
