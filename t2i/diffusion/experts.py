"""An ensemble of expert denoisers (eDiff-I, Balaji et al. 2022): each denoiser is trained on a
range of diffusion steps, and sampling hands every step to the one whose range holds it.

The noisiest steps decide a picture's layout from the caption, and a UNet trained on every step
spends a tenth of its loss there; an expert trained on those steps alone can learn what the
whole-range model does not (docs/results/imagen.md, sessions 26 to 28).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Tensor = torch.Tensor
Denoiser = Callable[[Tensor, Tensor], Tensor]


def expert_denoiser(experts: Sequence[tuple[int, Denoiser]]) -> Denoiser:
    """(min_step, denoise) pairs -> one denoise(x, t): each row's step t goes to the expert with
    the largest min_step <= t. One expert must start at step 0, so that every step has one."""
    experts = sorted(experts, key=lambda e: e[0])
    starts = [s for s, _ in experts]
    if not experts or starts[0] != 0:
        raise ValueError(f"one expert must cover step 0 (the experts start at steps {starts})")
    if len(set(starts)) != len(starts):
        raise ValueError(f"two experts start at the same step: {starts}")
    if len(experts) == 1:
        return experts[0][1]
    bounds = torch.tensor(starts[1:])

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        which = torch.bucketize(t.cpu(), bounds, right=True)  # index of the expert each row belongs to
        if (which == which[0]).all():  # every sampler steps all rows together: one expert, one call
            return experts[int(which[0])][1](x, t)
        # rows at different steps: each expert sees the whole batch (its conditioning is bound to
        # it) and gives the rows in its range
        out = torch.empty_like(x)
        for i in which.unique().tolist():
            rows = (which == i).to(x.device)
            out[rows] = experts[i][1](x, t)[rows]
        return out

    return denoise
