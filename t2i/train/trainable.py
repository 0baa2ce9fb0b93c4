"""Which of a model's weights a run trains: all of them, or those whose names hold one of a few
pieces ("attn,text"). A fine-tune of a few layers keeps the rest bit for bit as it started, so a
pipeline can store such a model as its differences from the one it came from (an Imagen base's
high-noise expert beside the base: t2i/imagen/pipeline.py)."""
from __future__ import annotations

from torch import nn

from t2i.errors import InputError


def freeze_all_but(model: nn.Module, pieces: str) -> None:
    """Freeze every parameter whose name holds none of the comma-separated `pieces` (empty: train
    them all)."""
    wanted = [p.strip() for p in pieces.split(",") if p.strip()]
    if not wanted:
        return
    names = [name for name, _ in model.named_parameters()]
    unmatched = [w for w in wanted if not any(w in name for name in names)]
    if unmatched:
        raise InputError(f"train_only: no weight of this model is named with {', '.join(map(repr, unmatched))}")
    for name, param in model.named_parameters():
        param.requires_grad_(any(w in name for w in wanted))
