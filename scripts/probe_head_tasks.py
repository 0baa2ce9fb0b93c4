"""Does a pipeline's matching head tell a paraphrase's scene from its nearest wrong one?

For each paraphrase of the prompts files (of the tasks asked for): PAIRS rendered pairs, the
scene its canonical prompt asks for and a near miss that differs in the one thing the task
grades, drawn from the same random colours, sizes and places:

    single_object      two of the shape, in one colour (session 51's probe)
    counting           one object fewer, and one more where the count allows
    colors             the shape in another colour
    two_objects        one of the two shapes swapped for the third
    position           the two objects' places swapped
    attribute_binding  the two objects' colours swapped

How often the head gives the right picture the higher logit, and the mean margin, when it reads
the paraphrase and when it reads the canonical prompt. A gap between the two rows is the head
being fooled by the wording, which reranking decoder candidates then inherits. Session 51
(docs/results/unclip.md) found single objects' gap here first.

With --wrappers, the canonical prompts alone (24 of each task, canonical_prompts(24, seed=7),
held-out scenes left out) inside words that leave the scene as it is ("show me {}", "{},
please."): a head that ties a word to where it stands in the caption loses the scene once words
come before it (session 52).

Usage: python scripts/probe_head_tasks.py MODEL PROMPTS.jsonl [PROMPTS.jsonl ...] [--tasks T ...]
       python scripts/probe_head_tasks.py MODEL --wrappers [--tasks T ...]
"""
import argparse
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from t2i import load_pipeline
from t2i.data.dataset import to_model_range
from t2i.data.shapes import COLORS, MAX_OBJECTS, SHAPES, ShapeObject, place_objects, render_scene
from t2i.data.shapes_eval import TASKS, canonical_prompts, parse_prompt, scene_for_prompt
from t2i.eval.prompts import shapes_paraphrases

PAIRS = 8
WRAPPERS = ("{}", "show me {}", "Can you make {}?", "I'd like {}.", "a picture of {}", "{}, please.", "{} on a white background")


def _other(options, *avoid):
    return [o for o in options if o not in avoid]


def near_misses(task: str, scene: list[ShapeObject], size: int, rng: np.random.Generator) -> list[list[ShapeObject]]:
    """The wrong scenes a task's near miss allows for one right scene (see the module's table)."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    if task in ("single_object", "counting"):
        n, first = len(scene), scene[0]
        counts = [2] if task == "single_object" else [m for m in (n - 1, n + 1) if m <= MAX_OBJECTS]
        colours = lambda m: [o.color for o in scene][:m] + [pick(COLORS) for _ in range(m - n)]  # noqa: E731
        if task == "single_object":
            colours = lambda m: [first.color] * m  # noqa: E731
        return [place_objects(rng, size, [(c, first.shape) for c in colours(m)]) for m in counts]
    if task == "colors":
        return [[replace(scene[0], color=pick(_other(COLORS, scene[0].color)))]]
    if task == "two_objects":
        k = int(rng.integers(2))
        third = _other(SHAPES, scene[0].shape, scene[1].shape)[0]
        return [[replace(o, shape=third) if i == k else o for i, o in enumerate(scene)]]
    a, b = scene
    if task == "position":
        return [[replace(a, cx=b.cx, cy=b.cy), replace(b, cx=a.cx, cy=a.cy)]]
    return [[replace(a, color=b.color), replace(b, color=a.color)]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("prompts", nargs="*", type=Path)
    p.add_argument("--wrappers", action="store_true", help="canonical prompts inside words that leave the scene as it is, instead of the files")
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--worst", type=int, default=0, help="also print the N paraphrases whose right scene the head prefers least")
    args = p.parse_args()
    torch.set_num_threads(1)
    pipe = load_pipeline(args.model)
    clip, size = pipe.clip.model, pipe.clip.model.config.image_size
    rng = np.random.default_rng(0)

    def logits(text: str, images: torch.Tensor) -> np.ndarray:
        enc, _ = pipe.encode_text([text])
        with torch.no_grad():
            return clip.match_logits(images, enc.tokens.repeat(len(images), 1, 1), enc.mask.repeat(len(images), 1)).numpy()

    def pairs(task: str, canonical: str) -> tuple[torch.Tensor, torch.Tensor]:
        right, wrong = [], []
        for _ in range(PAIRS):
            scene = scene_for_prompt(canonical, rng, size)
            for miss in near_misses(task, scene, size, rng):
                right.append(render_scene(scene, size))
                wrong.append(render_scene(miss, size))
        return to_model_range(np.stack(right)), to_model_range(np.stack(wrong))

    if args.wrappers:
        for task in args.tasks:
            scenes = [(q.prompt, *pairs(task, q.prompt)) for q in canonical_prompts(24, seed=7) if q.task == task and not q.held_out]
            for wrapper in WRAPPERS:
                won = [(logits(wrapper.format(text), right) > logits(wrapper.format(text), wrong)).mean() for text, right, wrong in scenes]
                print(f"{task:17s} {wrapper!r:28s} prompts {len(won):3d}  right preferred {np.mean(won):.3f}")
        return
    if not args.prompts:
        p.error("give prompts files, or --wrappers")
    rows = defaultdict(list)  # (task, "paraphrase" | "canonical") -> [(right preferred, margin)]
    each = []  # (right preferred, margin, paraphrase) for --worst
    for para in (q for q in shapes_paraphrases(tuple(args.prompts)) if q.task in args.tasks):
        parse_prompt(para.canonical)  # a canonical prompt the scorer grades, else InputError
        right, wrong = pairs(para.task, para.canonical)
        for kind, text in (("paraphrase", para.prompt), ("canonical", para.canonical)):
            a, b = logits(text, right), logits(text, wrong)
            rows[para.task, kind].append(((a > b).mean(), (a - b).mean()))
        each.append((*rows[para.task, "paraphrase"][-1], para))
    for task in args.tasks:
        for kind in ("paraphrase", "canonical"):
            r = np.array(rows[task, kind])
            if len(r):
                print(f"{task:17s} {kind:10s} prompts {len(r):3d}  right preferred {r[:, 0].mean():.3f}  mean margin {r[:, 1].mean():+.2f}")
    for won, margin, para in sorted(each, key=lambda e: e[:2])[: args.worst]:
        print(f"{won:.2f} {margin:+6.2f}  {para.prompt!r} ({para.canonical})")


if __name__ == "__main__":
    main()
