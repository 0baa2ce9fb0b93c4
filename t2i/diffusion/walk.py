"""What every sampler shares: the denoiser's type, checking a walk's inputs, one denoiser call."""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import torch

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x_t (B, ...), t LongTensor (B,)) -> x0_hat (B, ...)
Progress = Callable[[int, int], None]


def prepare(x_T: Tensor, timesteps: Sequence[int], alphas_cumprod: Tensor) -> tuple[list[int], list[float]]:
    """Validate sampler inputs; return timesteps as ints and ᾱ as Python floats."""
    if not isinstance(x_T, Tensor) or x_T.ndim < 1:
        raise ValueError("x_T must be a tensor (B, ...)")
    if not isinstance(alphas_cumprod, Tensor) or alphas_cumprod.ndim != 1 or alphas_cumprod.numel() < 1:
        raise ValueError("alphas_cumprod must be a 1-D tensor (T,)")
    ac = alphas_cumprod.detach().to("cpu", torch.float64).tolist()
    if not all(0.0 < a < 1.0 for a in ac):
        raise ValueError("alphas_cumprod values must lie in (0, 1)")
    steps = [operator.index(t) for t in timesteps]
    if not steps:
        raise ValueError("timesteps must not be empty")
    if any(a <= b for a, b in zip(steps, steps[1:])):
        raise ValueError(f"timesteps must be strictly descending, got {steps}")
    if steps[0] >= len(ac) or steps[-1] < 0:
        raise ValueError(f"timesteps must lie in [0, {len(ac) - 1}], got {steps[0]}..{steps[-1]}")
    return steps, ac


def denoise_at(denoise: Denoiser, x: Tensor, t: int) -> Tensor:
    t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    x0 = denoise(x, t_batch)
    if x0.shape != x.shape:
        raise ValueError(f"denoise returned shape {tuple(x0.shape)} for input {tuple(x.shape)}")
    return x0
