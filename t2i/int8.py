"""int8 storage with one scale per row: a weight's rows are its output channels, a caption
memory's its keys. Symmetric and per row, so a row of small values keeps its own precision;
the stored tensor takes a quarter of fp32's bytes (half of fp16's), and each value is off by
at most half its row's step, max |row| / 254."""
from __future__ import annotations

import torch


def to_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, ...) floats -> int8 of the same shape, and float32 scales (N, 1, ...) with x ≈ q * scale."""
    scale = x.float().abs().reshape(len(x), -1).amax(dim=1).clamp(min=1e-8) / 127
    scale = scale.reshape(-1, *([1] * (x.ndim - 1)))
    return (x.float() / scale).round().to(torch.int8), scale


def from_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale
