"""Zero-shot retrieval with CLIP embeddings: image→text and text→image top-k accuracy."""
from __future__ import annotations

import torch


def retrieval_scores(image_embeds: torch.Tensor, text_embeds: torch.Tensor, texts: list[str]) -> dict[str, float]:
    """Row i of each is a true pair. A retrieved caption counts as right when its text equals the
    true caption (several images may share one caption); an image counts when its caption does.

    image_embeds, text_embeds: (N, E) unit norm. Returns top-1/top-5 in both directions, in [0, 1].
    """
    if len(image_embeds) != len(text_embeds) or len(texts) != len(image_embeds):
        raise ValueError("image_embeds, text_embeds and texts must have the same length")
    ids = {t: i for i, t in enumerate(dict.fromkeys(texts))}
    label = torch.tensor([ids[t] for t in texts])
    sim = image_embeds @ text_embeds.t()
    correct = label[:, None] == label[None, :]
    out = {}
    for name, s, c in (("image_to_text", sim, correct), ("text_to_image", sim.t(), correct.t())):
        order = s.argsort(dim=1, descending=True)
        hits = torch.gather(c, 1, order)
        for k in (1, 5):
            out[f"{name}_top{k}"] = float(hits[:, :k].any(dim=1).float().mean())
    return out


def hard_negative_accuracy(image_embeds: torch.Tensor, text_embeds: torch.Tensor, negative_embeds: torch.Tensor, owner: torch.Tensor) -> float:
    """How often an image is closer to its own caption than to a hard negative of it (a caption
    with the same words and another meaning, t2i.text.negatives): a bag-of-words CLIP scores
    about 0.5. negative_embeds (M, E) are negatives of the captions in rows `owner` (M,)."""
    if len(negative_embeds) != len(owner):
        raise ValueError("negative_embeds and owner must have the same length")
    if not len(owner):
        return float("nan")
    true = (image_embeds[owner] * text_embeds[owner]).sum(-1)
    false = (image_embeds[owner] * negative_embeds).sum(-1)
    return float((true > false).float().mean())
