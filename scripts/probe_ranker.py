"""How well a shapes CLIP ranks, by its cosine and (if it has one) by its matching head.

    python scripts/probe_ranker.py t2i/assets/models/shapes/clip runs/shapes-match

Caption side: for held-out scenes, how often the scene's own caption scores above each kind of
hard negative (t2i.text.negatives: a relation flipped, colours or sizes swapped, a count off by
one); 0.5 is a bag of words. Image side, what reranking decoder candidates asks: for the
caption "N circles" (squares, triangles; N = 2, 3), how often the rendered scene of N objects
scores above renders of N - 1 and N + 1 (1/3 is chance).
"""
import argparse

import numpy as np
import torch

from t2i.checkpoint import load_component
from t2i.data.dataset import to_model_range
from t2i.data.shapes import render_scene
from t2i.data.shapes_eval import scene_for_prompt
from t2i.data.sources import load_dataset
from t2i.text import negatives
from t2i.text.encoder import get_text_encoder
from t2i.train.build import resolve_component

KINDS = {
    "relation": negatives._relation_flip,
    "colour": lambda c: negatives._attribute_swap(c, negatives.COLOURS),
    "size": lambda c: negatives._attribute_swap(c, negatives.SIZES),
    "count": negatives._count_change,
}
COUNT_WORDS = ("a", "two", "three", "four")


@torch.no_grad()
def scores(model, images: torch.Tensor, captions: list[str]) -> dict[str, torch.Tensor]:
    """Each image with its caption: {"cosine": (N,), "head": (N,) if the CLIP has one}."""
    enc = get_text_encoder(model.config.max_tokens).encode(captions)
    tokens = model.image_tokens(images)
    out = {"cosine": (model.embed_image_tokens(tokens) * model.encode_text(enc.tokens, enc.mask, enc.pooled)).sum(-1)}
    if model.has_match_head:
        out["head"] = model.match_logits(images, enc.tokens, enc.mask, image_tokens=tokens)
    return out


def caption_side(model, held, n: int) -> None:
    images = to_model_range(held.images[:n])
    for kind, perturb in KINDS.items():
        pairs = [(i, c, perturb(c)) for i in range(n) for c in held.captions[i] if perturb(c)]
        idx = torch.tensor([i for i, _, _ in pairs])
        own = scores(model, images[idx], [c for _, c, _ in pairs])
        other = scores(model, images[idx], [neg for _, _, neg in pairs])
        print(f"  {kind:8s} ({len(pairs):3d} pairs): " + ", ".join(f"{k} {float((own[k] > other[k]).float().mean()):.2f}" for k in own))


def image_side(model, rng: np.random.Generator, trials: int) -> None:
    wins, total = {}, 0
    size = model.config.image_size
    for shape in ("circle", "square", "triangle"):
        for n in (2, 3):
            prompts = [f"{COUNT_WORDS[k - 1]} {shape}{'s' if k > 1 else ''}" for k in (n - 1, n, n + 1)]
            for _ in range(trials):
                images = to_model_range(np.stack([render_scene(scene_for_prompt(p, rng, size), size) for p in prompts]))
                for k, s in scores(model, images, [prompts[1]] * 3).items():
                    wins[k] = wins.get(k, 0) + int(s.argmax() == 1)
                total += 1
    print("  right count among n-1, n, n+1 objects: " + ", ".join(f"{k} {v / total:.2f}" for k, v in wins.items()) + f" ({total} trials)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", nargs="+", help="CLIP component folders or training runs")
    p.add_argument("--scenes", type=int, default=1000, help="held-out scenes for the caption side")
    p.add_argument("--trials", type=int, default=10, help="renders per count prompt for the image side")
    args = p.parse_args()
    torch.set_num_threads(1)
    held = load_dataset("shapes", size=32, split="heldout")
    for path in args.clip:
        model = load_component(resolve_component(path), role="clip").model.eval()
        print(path)
        caption_side(model, held, min(len(held), args.scenes))
        image_side(model, np.random.default_rng(0), args.trials)


if __name__ == "__main__":
    main()
