"""Does the frozen sentence embedding know who is where, and which colour is whose?

    python scripts/probe_word_order.py

A caption memory retrieves training captions by MiniLM's pooled sentence embedding. On the
shapes world that is only safe if swapping a relation's objects ("a circle above a square" /
"a square above a circle") or two objects' colours moves the embedding further than rewording
the same scene does. This prints the cosine between each caption and its swapped form, beside
the cosine of a few rewordings of one scene (docs/results/unclip.md, natural prompts).
"""
import itertools

import torch
import torch.nn.functional as F

from t2i.data.shapes import COLORS, RELATIONS, SHAPES
from t2i.text.encoder import get_text_encoder

REWORDINGS = [("a circle", "one circle"), ("a circle", "a single circle"), ("two squares", "2 squares"),
              ("a red circle", "a circle that is red"), ("a circle above a square", "a circle on top of a square")]


def cosines(pairs: list[tuple[str, str]]) -> torch.Tensor:
    encoder = get_text_encoder(32)
    first, second = (F.normalize(encoder.encode([p[i] for p in pairs]).pooled.float(), dim=-1) for i in (0, 1))
    return (first * second).sum(-1)


def main() -> None:
    torch.set_num_threads(1)
    # each unordered pair once: the swap of a swap is the pair itself
    relations = [(f"a {a} {r} a {b}", f"a {b} {r} a {a}") for a, b in itertools.combinations(SHAPES, 2) for r in RELATIONS]
    bindings = [(f"a {c} {a} and a {d} {b}", f"a {d} {a} and a {c} {b}")
                for c, d in itertools.combinations(COLORS, 2) for a, b in itertools.permutations(SHAPES, 2)]
    print("| pairs | count | cosine: mean | min | max |\n| --- | --- | --- | --- | --- |")
    for name, pairs in (("relation's objects swapped", relations), ("colours swapped between objects", bindings), ("rewordings of one scene", REWORDINGS)):
        c = cosines(pairs)
        print(f"| {name} | {len(pairs)} | {c.mean():.3f} | {c.min():.3f} | {c.max():.3f} |")


if __name__ == "__main__":
    main()
