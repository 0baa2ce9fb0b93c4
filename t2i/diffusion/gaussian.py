"""Gaussian diffusion: noise schedules, the forward process and the training loss.

This module knows nothing about networks or samplers. A `GaussianDiffusion` holds
the schedule tensors of one T-step forward process q(x_t | x_0) = N(sqrt(ᾱ_t) x_0,
(1 - ᾱ_t) I) and converts between the three parameterisations a network may predict:

    eps: the noise ε                     x_t = sqrt(ᾱ) x_0 + sqrt(1 - ᾱ) ε
    x0:  the clean sample x_0
    v:   v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x_0  (Salimans & Ho 2022)

Samplers (see `samplers.py`) work with a *denoiser* `denoise(x_t, t) -> x0_hat`;
`GaussianDiffusion.denoiser` turns any model into one. Timesteps `t` are always
integer indices 0..T-1 into the training schedule. Schedules are kept in float64 and
every result is cast to the dtype and device of the tensor it is combined with.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from t2i.diffusion.noise import Generator, randn
from t2i.errors import InputError

Tensor = torch.Tensor
ModelFn = Callable[..., Tensor]

OBJECTIVES = ("eps", "x0", "v")
SCHEDULES = ("linear", "cosine")
WEIGHTINGS = ("none", "min_snr")
MIN_SNR_GAMMA = 5.0  # Hang et al. 2023 found γ = 5 robust across objectives


def beta_schedule(kind: str, num_steps: int) -> Tensor:
    """Noise schedule β_0..β_{T-1} as a float64 tensor (T,).

    "linear": DDPM's 1e-4..0.02, scaled by 1000/T so any T gives a similar process.
    "cosine": Nichol & Dhariwal 2021, ᾱ(t) ∝ cos²((t/T + s)/(1 + s)·π/2) with s = 0.008,
    betas clipped at 0.999 to avoid a singularity at t = T.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise InputError(f"num_steps must be a positive int, got {num_steps!r}")
    if kind == "linear":
        scale = 1000.0 / num_steps
        return torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008

        def f(i: Tensor) -> Tensor:
            return torch.cos((i / num_steps + s) / (1 + s) * math.pi / 2) ** 2

        i = torch.arange(num_steps + 1, dtype=torch.float64)
        alpha_bar = f(i) / f(torch.zeros((), dtype=torch.float64))
        betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1]
        return betas.clamp(max=0.999)
    raise InputError(f"schedule kind must be one of {SCHEDULES}, got {kind!r}")


class GaussianDiffusion:
    """The forward process of one schedule plus conversions between objectives.

    All `t` arguments are LongTensors (B,) of training-schedule indices; `x0`, `x_t`,
    `noise` and model outputs share a shape (B, ...).
    """

    def __init__(self, *, schedule: str = "cosine", num_steps: int = 1000, objective: str = "eps") -> None:
        if objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.schedule = schedule
        self.num_steps = num_steps
        self.objective = objective

        betas = beta_schedule(schedule, num_steps)
        ac = torch.cumprod(1.0 - betas, dim=0)
        ac_prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        self.betas = betas
        self._ac = ac
        self.alphas_cumprod_prev = ac_prev
        self.sqrt_alphas_cumprod = ac.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - ac).sqrt()
        # DDPM posterior q(x_{t-1} | x_t, x_0), eq. (6)-(7) of Ho et al. 2020.
        self.posterior_variance = betas * (1.0 - ac_prev) / (1.0 - ac)
        # The variance is 0 at t = 0; log of the t = 1 value keeps the log finite.
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
        )
        self.posterior_mean_coef1 = betas * ac_prev.sqrt() / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - ac_prev) * (1.0 - betas).sqrt() / (1.0 - ac)
        # Cast copies keyed by (name, dtype, device) so sampling on an accelerator does
        # not copy a table to the device on every step.
        self._cast_cache: dict[tuple[str, torch.dtype, torch.device], Tensor] = {}

    @property
    def alphas_cumprod(self) -> Tensor:
        """ᾱ_t = Π_{s<=t} (1 - β_s), float64 (T,)."""
        return self._ac

    def __repr__(self) -> str:
        return (f"GaussianDiffusion(schedule={self.schedule!r}, num_steps={self.num_steps}, "
                f"objective={self.objective!r})")

    # ----------------------------------------------------------------- helpers
    def _check_t(self, t: Tensor, batch: int) -> None:
        if not isinstance(t, Tensor) or t.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"t must be an integer tensor (B,), got {type(t).__name__} "
                             f"{getattr(t, 'dtype', '')}")
        if t.shape != (batch,):
            raise ValueError(f"t must have shape ({batch},), got {tuple(t.shape)}")
        # A range check needs a device sync, so only do it where it is free.
        if t.device.type == "cpu" and t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise ValueError(f"t must lie in [0, {self.num_steps - 1}], got range "
                             f"[{int(t.min())}, {int(t.max())}]")

    def _gather(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """table[t] cast to like's dtype/device, shaped (B, 1, ..., 1) to broadcast."""
        self._check_t(t, like.shape[0])
        key = (name, like.dtype, like.device)
        table = self._cast_cache.get(key)
        if table is None:
            # Cast on the CPU first: some backends (MPS) have no float64.
            table = getattr(self, name).to(dtype=like.dtype).to(like.device)
            self._cast_cache[key] = table
        return table[t.to(like.device)].reshape(-1, *([1] * (like.ndim - 1)))

    @staticmethod
    def _check_same_shape(**tensors: Tensor) -> None:
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"shapes must match, got {shapes}")

    # --------------------------------------------------------- forward process
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw x_t ~ q(x_t | x_0) = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) noise. All (B, ...)."""
        self._check_same_shape(x0=x0, noise=noise)
        return (self._gather("sqrt_alphas_cumprod", t, x0) * x0
                + self._gather("sqrt_one_minus_alphas_cumprod", t, x0) * noise)

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q(x_{t-1} | x_t, x_0) as (mean (B, ...), variance (B, 1, ...), log_variance_clipped).

        variance = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t); it is 0 at t = 0, where the clipped log
        variance uses the t = 1 value instead.
        """
        self._check_same_shape(x0=x0, x_t=x_t)
        mean = (self._gather("posterior_mean_coef1", t, x_t) * x0
                + self._gather("posterior_mean_coef2", t, x_t) * x_t)
        return (mean, self._gather("posterior_variance", t, x_t),
                self._gather("posterior_log_variance_clipped", t, x_t))

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio ᾱ_t / (1 - ᾱ_t), float32 (B,) on t's device."""
        like = torch.empty(t.shape[0], dtype=torch.float32, device=t.device)
        return self._gather("_snr_table", t, like)

    @property
    def _snr_table(self) -> Tensor:
        return self._ac / (1.0 - self._ac)

    # ------------------------------------------------------------- objectives
    def to_x0(self, model_out: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Convert a model output of this diffusion's objective to x0_hat (B, ...)."""
        self._check_same_shape(model_out=model_out, x_t=x_t)
        if self.objective == "x0":
            return model_out
        a = self._gather("sqrt_alphas_cumprod", t, x_t)
        b = self._gather("sqrt_one_minus_alphas_cumprod", t, x_t)
        if self.objective == "eps":
            return (x_t - b * model_out) / a
        return a * x_t - b * model_out  # v

    def eps_from_x0(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The noise implied by x0 and x_t: (x_t - sqrt(ᾱ_t) x0) / sqrt(1 - ᾱ_t). (B, ...)."""
        self._check_same_shape(x0=x0, x_t=x_t)
        a = self._gather("sqrt_alphas_cumprod", t, x_t)
        b = self._gather("sqrt_one_minus_alphas_cumprod", t, x_t)
        return (x_t - a * x0) / b

    def training_target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network should output for (x0, noise, t) under this objective. (B, ...)."""
        self._check_same_shape(x0=x0, noise=noise)
        if self.objective == "eps":
            return noise
        if self.objective == "x0":
            return x0
        a = self._gather("sqrt_alphas_cumprod", t, x0)
        b = self._gather("sqrt_one_minus_alphas_cumprod", t, x0)
        return a * noise - b * x0  # v

    def denoiser(self, model_fn: ModelFn) -> Callable[..., Tensor]:
        """Wrap `model_fn(x_t, t, **kw) -> model output` as `denoise(x_t, t, **kw) -> x0_hat`.

        Extra keyword arguments (conditioning) pass straight through to the model, so the
        result can be handed to `guidance.guided_denoiser`.
        """

        def denoise(x_t: Tensor, t: Tensor, **kwargs) -> Tensor:
            return self.to_x0(model_fn(x_t, t, **kwargs), x_t, t)

        return denoise

    # ---------------------------------------------------------------- training
    def sample_t(self, batch: int, *, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, low: int = 0) -> Tensor:
        """Timesteps drawn uniformly from low..T-1 (all of them by default), LongTensor (batch,)."""
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        # Draw where the generator lives, then move: randint rejects a mismatch.
        gen_device = generator.device if generator is not None else device
        t = torch.randint(low, self.num_steps, (batch,), generator=generator, device=gen_device)
        return t.to(device) if device is not None else t

    def loss(self, model_fn: ModelFn, x0: Tensor, *, generator: torch.Generator | None = None,
             t: Tensor | None = None, noise: Tensor | None = None, weighting: str = "none") -> Tensor:
        """Per-example MSE between model output and training target, (B,).

        model_fn(x_t, t) -> output (B, ...) in this diffusion's objective. `t` and `noise`
        are drawn (from `generator`) when not given. weighting="min_snr" applies min-SNR-γ
        (γ = 5), written for each objective so that all three equal min(snr, γ)·|x0_hat - x0|².
        """
        if weighting not in WEIGHTINGS:
            raise InputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        batch = x0.shape[0]
        if t is None:
            t = self.sample_t(batch, generator=generator, device=x0.device)
        if noise is None:
            noise = randn_like(x0, generator=generator)
        x_t = self.q_sample(x0, t, noise)
        out = model_fn(x_t, t)
        target = self.training_target(x0, noise, t)
        if out.shape != target.shape:
            raise ValueError(f"model output shape {tuple(out.shape)} != target shape {tuple(target.shape)}")
        mse = (out - target).pow(2).reshape(batch, -1).mean(dim=1)
        if weighting == "none":
            return mse
        snr = self._gather("_snr_table", t, mse)
        clipped = snr.clamp(max=MIN_SNR_GAMMA)
        # |eps err|² = snr·|x0 err|² and |v err|² = (snr+1)·|x0 err|², hence the divisors.
        if self.objective == "eps":
            weight = clipped / snr
        elif self.objective == "x0":
            weight = clipped
        else:
            weight = clipped / (snr + 1.0)
        return mse * weight


def randn_like(like: Tensor, *, generator: Generator = None) -> Tensor:
    """Standard normal noise shaped like `like`, from a generator or per-row generators (t2i.diffusion.noise)."""
    return randn(like.shape, generator, dtype=like.dtype, device=like.device)
