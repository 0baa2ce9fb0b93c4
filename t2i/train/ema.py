"""Exponential moving average of a model's weights, with the usual warm-up of the decay."""
from __future__ import annotations

import copy

import torch
from torch import nn

from t2i.errors import InputError


class EMA:
    def __init__(self, model: nn.Module, *, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise InputError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # early in training the average would be dominated by the random init: ramp the decay up
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.lerp_(p.detach().to(ema_p.dtype), 1.0 - decay)
        for ema_b, b in zip(self.model.buffers(), model.buffers()):
            ema_b.copy_(b)
