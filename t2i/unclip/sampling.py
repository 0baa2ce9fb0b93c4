"""unCLIP's prior at sampling time: caption -> CLIP image embedding, with candidate selection."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from t2i.checkpoint import Component
from t2i.diffusion.noise import RowGenerators
from t2i.pipelines.sampling import keep_best, sample_chain


def keep_closest(candidates: torch.Tensor, embeds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Candidates (B, k, ...) -> (B, ...): per row, the one whose unit embedding in embeds (B, k, E)
    has the largest cosine with target (B, E). The prior's candidate choice."""
    return keep_best(candidates, (embeds * target[:, None]).sum(-1))


@torch.no_grad()
def run_prior(prior: Component, text_embed, tokens, token_mask, *, steps=25, guidance=2.0, candidates=1, sampler="ddim", spacing="uniform", generator=None, progress=None):
    """CLIP text embeddings (B, E) + tokens -> CLIP image embeddings (B, E), unit norm.

    With candidates = k, k embeddings are drawn per caption and the one most similar to the
    caption's text embedding is kept (DALL-E 2, section 2.2)."""
    b, e = text_embed.shape
    k = max(1, candidates)
    rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
    te, tok, mask = rep(text_embed), rep(tokens), rep(token_mask)
    ones = torch.ones(b * k, dtype=torch.bool, device=te.device)
    cond = {"text_embed": te, "tokens": tok, "token_mask": mask, "keep": ones}
    null = {"text_embed": te, "tokens": tok, "token_mask": mask, "keep": ~ones}
    scale = prior.settings.get("embed_scale", math.sqrt(e))
    if k > 1 and isinstance(generator, RowGenerators):
        generator = generator.repeat(k, "prior candidates")
    z = sample_chain(prior, prior.model, [null, cond], [guidance], (b * k, e), steps=steps, sampler=sampler, spacing=spacing, threshold="none", generator=generator, progress=progress)
    z = F.normalize(z / scale, dim=-1).view(b, k, e)
    return keep_closest(z, z, text_embed)
