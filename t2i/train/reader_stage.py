"""The scene reader's training stage: the distinct captions of a shapes dataset, or with chance
`caption_augment` one of their wordings (t2i.text.augment), each read into its caption's scene.

A reader reads words, not images, so it draws captions, not images, and no caption is drawn more
often for captioning more images. The training scenes rarely hold four of one shape (7 of the
16,764 captions say "four"), and a reader fitted to them read "four circles" as three; so every
caption of one group is also said at the other counts ("a red circle" -> "two red circles", ...,
all true of scenes the world draws, none naming a held-out pair), and half the draws are spread
evenly over the kinds of scene (its groups' counts, and whether it has a relation) rather than
over captions, so a kind of scene with few captions is read as often as the rest. A relation is the
hardest field to read (which object is said first does not say which is on the left), and that
mix draws scenes with one only a tenth of the time; `relation_share` sets their share directly."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from t2i.checkpoint import Component
from t2i.data.sources import load_dataset
from t2i.errors import InputError
from t2i.text.encoder import get_text_encoder
from t2i.text.scene_reading import COUNTS, WORLD, canonical_scene, read_scenes, reader_loss, say_scene, scene_targets
from t2i.text.shapes_wording import Group, Scene, parse_caption
from t2i.train.captions import CaptionTable
from t2i.train.options import CaptionOptions, rate
from t2i.train.stages import Stage

DEV_PROMPTS = Path(__file__).resolve().parent.parent / "assets" / "prompts" / "shapes-paraphrases-dev.jsonl"


@dataclass(frozen=True)
class ReaderOptions(CaptionOptions):
    """caption_augment: the chance that a drawn caption is replaced by one of its wordings."""

    relation_share: float = rate(0.0)  # the share of draws that are scenes with a relation (0: as the mix above draws them)


@dataclass(frozen=True)
class _Captions:
    """What CaptionTable reads of a dataset: one list of captions per item (here one caption each)."""

    captions: list[list[str]]


def other_counts(scene: Scene) -> list[Scene]:
    """A scene of one group, said at every count the world draws; nothing for other scenes."""
    if scene.relation is not None or len(scene.groups) != 1:
        return []
    g = scene.groups[0]
    return [Scene((Group(n, g.size, g.color, g.shape),)) for n in COUNTS[1:] if n != g.count]


def scene_kind(scene: Scene) -> tuple[bool, tuple[int, ...]]:
    """What kind of scene: whether it has a relation, and its groups' counts."""
    return scene.relation is not None, tuple(sorted(g.count for g in scene.groups))


class ReaderStage(Stage):
    name, model_kind, options, diffusion = "reader", "reader", ReaderOptions, False

    @classmethod
    def model_config(cls, model: dict[str, Any], needs: dict[str, Component]) -> dict[str, Any]:
        return {**model, **WORLD}  # one class per value of each field of the shapes world

    @classmethod
    def from_data(cls, component: Component, data: str, options: ReaderOptions, needs: dict[str, Component], templates: tuple[str, ...]) -> ReaderStage:
        return cls(component, load_dataset(data, size=32, shapes_counting=options.counting_scenes).captions, max_length=options.max_length,
                   caption_augment=options.caption_augment, templates=templates, relation_share=options.relation_share)

    def __init__(self, component: Component, captions: list[list[str]], *, max_length: int = 32, caption_augment: float = 0.0,
                 templates: tuple[str, ...] = (), relation_share: float = 0.0) -> None:
        self.component, self.max_length = component, max_length
        slots = component.model.config.slots
        scenes = {c: s for caps in captions for c in caps if (s := parse_caption(c)) is not None and len(s.groups) <= slots}
        if not scenes:
            raise InputError("the scene reader learns shapes-world scenes, and none of this data's captions says one")
        for scene in list(scenes.values()):
            for other in other_counts(scene):
                scenes.setdefault(say_scene(other), other)
        texts = sorted(scenes)
        self.captions = CaptionTable(_Captions([[c] for c in texts]), max_length=max_length, progress=True, augment=caption_augment, templates=templates)
        self.caption_rows = self.captions.rows  # one per text, in its order
        self.targets = torch.full((len(self.captions.texts), slots * 4 + 1), -1, dtype=torch.long)
        for text, row in zip(texts, self.caption_rows.tolist()):
            target = scene_targets(scenes[text], slots)
            wordings = self.captions.variants[row] if self.captions.variants.shape[1] else torch.empty(0, dtype=torch.long)
            for r in [row, *wordings[wordings >= 0].tolist()]:
                if self.targets[r, 0] < 0:  # a wording of two captions keeps the first's scene (they say the same)
                    self.targets[r] = target
        kinds = [scene_kind(scenes[t]) for t in texts]
        per_kind = Counter(kinds)
        self.weights = torch.tensor([0.5 / len(texts) + 0.5 / (len(per_kind) * per_kind[k]) for k in kinds], dtype=torch.float64)
        related = torch.tensor([k[0] for k in kinds])
        if relation_share > 0 and related.any() and not related.all():
            share = self.weights[related].sum()
            self.weights = torch.where(related, self.weights * relation_share / share, self.weights * (1 - relation_share) / (1 - share))
        self.dev = [json.loads(line) for line in DEV_PROMPTS.read_text().splitlines() if line.strip()]
        self.dev_encoding = None  # encoded at the first preview, once
        self.texts, self.scenes = texts, scenes

    def batch(self, step, size, generator):
        pick = torch.multinomial(self.weights, size, replacement=True, generator=generator)
        rows = self.captions.augmented(self.caption_rows[pick], generator)
        enc = self.captions.batch(rows)
        return {"tokens": enc.tokens, "token_mask": enc.mask, "targets": self.targets[rows]}

    def loss(self, model, batch, generator):
        return reader_loss(model(batch["tokens"], batch["token_mask"]), batch["targets"])

    def preview(self, model, step, out_dir):
        """Share of the development paraphrases (never trained on) and of the first 256 captions
        read as exactly their scene."""
        if self.dev_encoding is None:
            self.dev_encoding = get_text_encoder(self.max_length).encode([r["prompt"] for r in self.dev])
        enc = self.dev_encoding
        caps = self.captions.batch(self.caption_rows[:256])
        with torch.no_grad():
            dev, _ = read_scenes(model(enc.tokens, enc.mask))
            own, _ = read_scenes(model(caps.tokens, caps.mask))
        return {"read_dev": sum(s == canonical_scene(parse_caption(r["canonical"])) for s, r in zip(dev, self.dev)) / len(self.dev),
                "read_captions": sum(s == canonical_scene(self.scenes[t]) for s, t in zip(own, self.texts[:256])) / len(own)}
