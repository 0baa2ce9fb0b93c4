"""Reading a shapes prompt into its scene, and saying that scene in the training captions' words.

The shapes text path (CLIP text tower, prior, decoder and matching head) learnt wording through
caption augmentation, but each stage reads the words in its own way, and a wording none was
fitted to ("Please, three circles.", "Count: three. Shape: circle.") is lost in one stage or
another: on the blind sets, counting and binding paraphrases stayed 0.08 to 0.21 below their
canonical prompts through twenty rounds of fine-tuning (docs/results/unclip.md), while the same
stages do their best on the canonical words. So reading and drawing are split: a scene reader
(t2i.models.scene_reader), trained on every wording of every training caption, reads the prompt,
and the stages draw the canonical caption of what it read, as layout-first systems hand a
language model's reading of a prompt to the image model (LLM-grounded diffusion, Lian et al.
2023). Unlike the nearest caption (t2i.pipelines.caption_memory), which undoes composition on
this world, the reader fills each field on its own, so it can read a colour-shape pair that no
caption ever held.

A scene has one target: list groups are sorted (by shape, colour, size, count) and a relation is
said as "to the left of" or "above" (its mirrors swap the two objects).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from t2i.data.shapes import COLORS, SHAPES, SIZES, _join, _phrase
from t2i.text.shapes_wording import Group, Scene, parse_caption

COUNTS = (0, 1, 2, 3, 4)  # 0: the slot is empty
SIZE_NAMES = (None, *SIZES)
COLOR_NAMES = (None, *COLORS)
RELATION_NAMES = (None, "to the left of", "above")
MIRRORS = {"to the right of": "to the left of", "below": "above"}
MAX_OBJECTS = 4
FIELDS = ("count", "size", "color", "shape")  # a slot's fields, in the order of its targets (the reader's heads)
# the reader's config for this world: one class per value of each field
WORLD = {"counts": len(COUNTS), "sizes": len(SIZE_NAMES), "colors": len(COLOR_NAMES), "shapes": len(SHAPES), "relations": len(RELATION_NAMES)}


def canonical_scene(scene: Scene) -> Scene:
    """The one form of a scene: a relation as left-of or above, list groups sorted."""
    if scene.relation is not None:
        a, b = scene.groups
        return Scene((b, a), MIRRORS[scene.relation]) if scene.relation in MIRRORS else scene
    key = lambda g: (SHAPES.index(g.shape), COLOR_NAMES.index(g.color), SIZE_NAMES.index(g.size), g.count)  # noqa: E731
    return Scene(tuple(sorted(scene.groups, key=key)))


def same_scene(a: str, b: str) -> bool:
    """Whether two shapes captions say one scene ('a circle left of a square' and 'a square right of a circle' do)."""
    sa, sb = parse_caption(a), parse_caption(b)
    return sa is not None and sb is not None and canonical_scene(sa) == canonical_scene(sb)


def say_scene(scene: Scene) -> str:
    """A scene in the training captions' words: 'two red circles and a square', 'a circle above a blue square'."""
    phrases = [_phrase(g.count, g.shape, g.color, g.size) for g in scene.groups]  # the renderer's own captioning
    return f"{phrases[0]} {scene.relation} {phrases[1]}" if scene.relation is not None else _join(phrases)


def scene_targets(scene: Scene, slots: int) -> torch.Tensor:
    """(slots * 4 + 1,) class indices: count, size, colour and shape of each slot, then the relation."""
    scene = canonical_scene(scene)
    if len(scene.groups) > slots:
        raise ValueError(f"a scene of {len(scene.groups)} groups does not fit {slots} slots")
    out = []
    for i in range(slots):
        g = scene.groups[i] if i < len(scene.groups) else None
        out += [0, 0, 0, 0] if g is None else [COUNTS.index(g.count), SIZE_NAMES.index(g.size), COLOR_NAMES.index(g.color), SHAPES.index(g.shape)]
    out.append(RELATION_NAMES.index(scene.relation))
    return torch.tensor(out, dtype=torch.long)


def reader_loss(logits: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every field; an empty slot's size, colour and shape are not scored."""
    per_slot = targets[:, :-1].view(len(targets), -1, len(FIELDS))
    present = (per_slot[..., 0] > 0).flatten().float()
    loss = F.cross_entropy(logits["count"].flatten(0, 1), per_slot[..., 0].flatten())
    for i, name in enumerate(FIELDS[1:], start=1):
        ce = F.cross_entropy(logits[name].flatten(0, 1), per_slot[..., i].flatten(), reduction="none")
        loss = loss + (ce * present).sum() / present.sum().clamp(min=1)
    return loss + F.cross_entropy(logits["relation"], targets[:, -1])


@torch.no_grad()
def read_scenes(logits: dict[str, torch.Tensor]) -> tuple[list[Scene | None], torch.Tensor]:
    """Each row's most likely scene (None where that reading is no scene of this world: more than
    MAX_OBJECTS objects, or a relation between anything but two single objects) and its confidence,
    the product of the chosen classes' probabilities.

    A list never names one group twice (a caption counts alike objects in one group: 'two
    circles'), yet the reader, sure of itself, fills a second slot with a copy of the first on
    short single-object prompts ('show one disc', 'Square. Just a square.': 'a circle and a
    circle'), on every blind set; so a copy is dropped. 'a square and another square' is then read
    as one square (it was read as 'a square and a square', which the stages draw as two)."""
    best = {name: v.float().softmax(-1).max(-1) for name, v in logits.items()}
    fields = torch.stack([best[name].indices for name in FIELDS], -1)  # (B, slots, 4)
    present = fields[..., 0] > 0
    slot_conf = torch.where(present, torch.stack([best[name].values for name in FIELDS], -1).prod(-1), best["count"].values)
    confidence = slot_conf.prod(-1) * best["relation"].values
    scenes = []
    for row, relation in zip(fields.tolist(), best["relation"].indices.tolist()):
        groups = tuple(Group(COUNTS[c], SIZE_NAMES[s], COLOR_NAMES[k], SHAPES[h]) for c, s, k, h in row if c > 0)
        relation = RELATION_NAMES[relation]
        if relation is None:
            groups = tuple(dict.fromkeys(groups))  # a slot that echoes another: see the docstring
        ok = groups and sum(g.count for g in groups) <= MAX_OBJECTS
        ok = ok and (relation is None or (len(groups) == 2 and groups[0].count == groups[1].count == 1))
        scenes.append(Scene(groups, relation) if ok else None)
    return scenes, confidence
