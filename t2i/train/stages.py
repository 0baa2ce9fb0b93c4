"""Training stages: each supplies a model, batches and a loss to the one Trainer.

Here the Stage base and what stages share; every UNet of every system trains in
t2i/train/unet_stage.py, and a system's own stages live in its package (unCLIP's CLIP and prior
in t2i/unclip/). The registry (t2i/registry.py) names the stages; each class says what it trains
(`model_kind`), its typed options, and how it loads its data (`from_data`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from t2i.checkpoint import Component
from t2i.train.captions import uniform_below

PREVIEW_COUNT = 8


class Stage:
    """What make_trainer needs of a training stage besides batch, loss and preview."""

    name: str
    model_kind: str  # a component kind (t2i.checkpoint.MODEL_CLASSES)
    options: type  # the typed "options" section
    diffusion = True  # trained on a diffusion process: the section may have a "diffusion" part

    @classmethod
    def model_config(cls, model: dict[str, Any], needs: dict[str, Component]) -> dict[str, Any]:
        """The model's config: a stage that reads CLIP embeddings takes their size from that CLIP."""
        return {**model, "embed_dim": needs["clip"].model.config.embed_dim} if "clip" in needs else model

    @classmethod
    def settings(cls, options, model: dict[str, Any]) -> dict[str, Any]:
        """What the component keeps besides its weights and diffusion, for sampling."""
        return {}


def draw_rows(step_gen: torch.Generator, n: int, size: int) -> torch.Tensor:
    return torch.randint(0, n, (size,), generator=step_gen)


class GroupDraw:
    """Draws a group uniformly, then one of its images: each group (an emoji with its skin-tone
    variants) as often as a single image, where drawing images uniformly gives a group of six six
    times the draws. Data without groups: every image is its own group, and this is uniform."""

    def __init__(self, groups: np.ndarray | None, n: int) -> None:
        _, inverse = np.unique(np.arange(n) if groups is None else groups, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        self.members = torch.as_tensor(order, dtype=torch.long)  # image indices, group by group
        self.counts = torch.as_tensor(np.bincount(inverse), dtype=torch.long)
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def __call__(self, step_gen: torch.Generator, size: int) -> torch.Tensor:
        group = torch.randint(0, len(self.counts), (size,), generator=step_gen)
        return self.members[self.starts[group] + uniform_below(self.counts[group], step_gen)]


def noised_embeddings(embeds: torch.Tensor, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Unit embeddings (B, E) -> normalize(e + sigma * n), n ~ N(0, I/E) (about unit length),
    sigma ~ U[0, max_sigma] per row; cosine to e is about 1/sqrt(1 + sigma^2). Conditioning
    augmentation: the prior's embeddings land near, not on, the training images' embeddings."""
    sigma = torch.rand(len(embeds), 1, generator=generator) * max_sigma
    noise = torch.randn(embeds.shape, generator=generator) / math.sqrt(embeds.shape[1])
    return F.normalize(embeds + sigma * noise, dim=-1)
