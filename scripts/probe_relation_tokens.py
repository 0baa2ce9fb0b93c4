"""Does MiniLM's state of an object word say which side of the picture its object is on?

In "a circle to the left of a square" the circle is on the left; in "a circle to the right of a
square", and in "a square to the left of a circle", it is on the right. An object's side is the
exclusive-or of two facts: whether its word comes first, and whether the relation is one of
"left of"/"above" or "right of"/"below". Either fact alone says nothing about the side. A UNet's
cross-attention keys are linear in each token's state, so for a pixel on the left to find the
object drawn there, the side must be readable from the object word's state (or be made so by
trainable text blocks before the UNet reads it).

This probe fits classifiers on the states of the object words of relation captions (every
shape, colour, size and relation word of the shapes world; colours split into fit and test
sets, so the test captions name colours the classifier never saw) and reports test accuracy for
three targets: the word's order (first or second), the relation group, and the side.

    python scripts/probe_relation_tokens.py [--layers 0 2 4]   # about 20 minutes on one thread

Classifiers: logistic regression on the state; an MLP (one hidden layer of 256); and layers
shaped like the Imagen base's text path (`model.text_positions`, `model.text_blocks`: a projection
to 192 dimensions, a learned embedding of each token's index, the project's TransformerBlock with
heads of 24 dimensions), then a linear read-out of the object word, trained
directly on the side. Unlike the UNet's, these blocks do not start as the identity.
"""
from __future__ import annotations

import argparse
import random

import torch
from torch import nn

from t2i.data.shapes import COLORS, FIRST_LEFT_OR_TOP, RELATION_PARAPHRASES, RELATIONS, SHAPES, SIZES
from t2i.nn.attention import TransformerBlock
from t2i.text.encoder import TextEncoder


def phrase(shape: str, color: str | None, size: str | None) -> str:
    return " ".join(["a", *(w for w in (size, color) if w), shape])


def relation_captions(rng: random.Random, colors: list[str], n: int) -> list[tuple[str, str, str, int]]:
    """n captions (caption, first shape, second shape, side of the first object: 1 left/top)."""
    out = []
    for _ in range(n):
        a, b = rng.sample(SHAPES, 2)
        relation = rng.choice(RELATIONS)
        word = rng.choice((relation,) + RELATION_PARAPHRASES[relation])
        pa = phrase(a, rng.choice([None, *colors]), rng.choice([None, *SIZES]))
        pb = phrase(b, rng.choice([None, *colors]), rng.choice([None, *SIZES]))
        out.append((f"{pa} {word} {pb}", a, b, int(relation in FIRST_LEFT_OR_TOP)))
    return out


def object_positions(encoder: TextEncoder, caption: str, a: str, b: str) -> tuple[int, int]:
    """Token indices of the two shape words ([CLS] is index 0)."""
    ids = encoder.tokenizer.encode(caption).ids
    words = [encoder.tokenizer.id_to_token(i) for i in ids]
    first = words.index(a)
    return first, first + 1 + words[first + 1:].index(b)


def examples(encoder: TextEncoder, rows):
    """Per object word: its state, its index, the caption's states and mask, and the labels."""
    enc = encoder.encode([r[0] for r in rows])
    states, where, order, group, side, caption_of = [], [], [], [], [], []
    for i, (caption, a, b, first_side) in enumerate(rows):
        for k, pos in enumerate(object_positions(encoder, caption, a, b)):
            states.append(enc.tokens[i, pos])
            where.append(pos)
            order.append(k)
            group.append(first_side)
            side.append(first_side if k == 0 else 1 - first_side)
            caption_of.append(i)
    labels = {name: torch.tensor(v, dtype=torch.float32) for name, v in (("order", order), ("relation", group), ("side", side))}
    return torch.stack(states), torch.tensor(where), torch.tensor(caption_of), enc, labels


def fit(model: nn.Module, inputs, y: torch.Tensor, steps: int, lr: float) -> nn.Module:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model(*inputs).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def accuracy(model: nn.Module, inputs, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model(*inputs).squeeze(-1) > 0).float() == y).float().mean())


class TextSide(nn.Module):
    """Layers shaped like the UNet's text path (projection, token positions, transformer blocks)
    and a read-out of the object word's output."""

    def __init__(self, blocks: int, dim: int = 192, max_len: int = 32) -> None:
        super().__init__()
        self.proj = nn.Linear(384, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim=dim, num_heads=dim // 24) for _ in range(blocks))
        self.out = nn.Linear(dim, 1)

    def forward(self, tokens, mask, caption_of, where):
        x = self.proj(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, mask=mask[:, None, None, :])
        return self.out(x[caption_of, where])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, nargs="+", default=[0], help="MiniLM depth read (0: all six)")
    p.add_argument("--captions", type=int, default=1500, help="fit captions (test: a third as many)")
    p.add_argument("--steps", type=int, default=500, help="optimizer steps per classifier")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    colors = list(COLORS)
    rng.shuffle(colors)
    fit_colors, test_colors = colors[: len(colors) // 2 + 1], colors[len(colors) // 2 + 1:]
    fit_rows = relation_captions(rng, fit_colors, args.captions)
    test_rows = relation_captions(rng, test_colors, args.captions // 3)
    print(f"fit colours {fit_colors}, test colours {test_colors}; chance 0.5 on every target\n")
    print("| MiniLM layers | classifier | order | relation | side |")
    print("| --- | --- | --- | --- | --- |")
    for layers in args.layers:
        encoder = TextEncoder(layers=layers)
        xs, ws, cs, enc, ys = examples(encoder, fit_rows)
        xt, wt, ct, enc_t, yt = examples(encoder, test_rows)
        mean, std = xs.mean(0), xs.std(0) + 1e-6
        name = layers or 6
        for label, make in (("logistic", lambda: nn.Linear(384, 1)),
                            ("MLP (256)", lambda: nn.Sequential(nn.Linear(384, 256), nn.GELU(), nn.Linear(256, 1)))):
            cells = []
            for target in ("order", "relation", "side"):
                model = fit(make(), ((xs - mean) / std,), ys[target], args.steps, 1e-2)
                cells.append(f"{accuracy(model, ((xt - mean) / std,), yt[target]):.3f}")
            print(f"| {name} | {label} | {' | '.join(cells)} |", flush=True)
        for blocks in (0, 2):
            model = fit(TextSide(blocks), (enc.tokens, enc.mask, cs, ws), ys["side"], args.steps, 1e-3)
            acc = accuracy(model, (enc_t.tokens, enc_t.mask, ct, wt), yt["side"])
            print(f"| {name} | text side, positions + {blocks} blocks | | | {acc:.3f} |", flush=True)


if __name__ == "__main__":
    main()
