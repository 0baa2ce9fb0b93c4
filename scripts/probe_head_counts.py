"""Does a pipeline's matching head tell one object from two of the same?

For each single-object paraphrase of the prompts files: 8 rendered pairs (one shape, and two of
it in the same colour); how often the head gives the one-object picture the higher logit, and
the mean margin. The same for the paraphrase's canonical prompt, and for "two <shape>s" (where
two should win). Session 51 (docs/results/unclip.md) found the shipped head fooled by
paraphrases ("exactly one square") far more often than by "a square".

Usage: python scripts/probe_head_counts.py MODEL PROMPTS.jsonl [PROMPTS.jsonl ...]
"""
import sys
from pathlib import Path

import numpy as np
import torch

from t2i import load_pipeline
from t2i.data.dataset import to_model_range
from t2i.data.shapes import PALETTE, ShapeObject, render_scene
from t2i.eval.prompts import shapes_paraphrases

PAIRS = 8


def one_and_two(shape: str, side: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """PAIRS pictures of one `shape` and PAIRS of two of it, each pair in one colour."""
    colours, one, two = list(PALETTE), [], []
    for _ in range(PAIRS):
        colour, size = colours[rng.integers(len(colours))], ("small", "large")[rng.integers(2)]
        one.append(render_scene([ShapeObject(shape, colour, size, side * rng.uniform(0.35, 0.65), side * rng.uniform(0.35, 0.65))], side))
        two.append(render_scene([ShapeObject(shape, colour, "small", side * 0.28, side * rng.uniform(0.3, 0.7)),
                                 ShapeObject(shape, colour, "small", side * 0.72, side * rng.uniform(0.3, 0.7))], side))
    return to_model_range(np.stack(one)), to_model_range(np.stack(two))


def main() -> None:
    torch.set_num_threads(1)
    pipe = load_pipeline(sys.argv[1])
    clip = pipe.clip.model
    prompts = [p for p in shapes_paraphrases(tuple(Path(a) for a in sys.argv[2:])) if p.task == "single_object"]
    rng = np.random.default_rng(0)

    def logits(text: str, images: torch.Tensor) -> np.ndarray:
        enc, _ = pipe.encode_text([text])
        with torch.no_grad():
            return clip.match_logits(images, enc.tokens.repeat(len(images), 1, 1), enc.mask.repeat(len(images), 1)).numpy()

    results = {"paraphrase": [], "canonical": [], "two <shape>s": []}
    for p in prompts:
        shape = p.canonical.split()[-1]
        one, two = one_and_two(shape, clip.config.image_size, rng)
        for kind, text in zip(results, (p.prompt, p.canonical, f"two {shape}s")):
            a, b = logits(text, one), logits(text, two)
            results[kind].append(((a > b).mean(), (a - b).mean()))
    for kind, rows in results.items():
        r = np.array(rows)
        print(f"{kind:13s} prompts {len(r)}  one preferred {r[:, 0].mean():.3f}  mean margin {r[:, 1].mean():+.2f}")


if __name__ == "__main__":
    main()
