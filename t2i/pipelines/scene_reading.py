"""Prompts read by a scene reader: a prompt that is not already a shapes caption is replaced by
the caption of the scene read from it (t2i.text.scene_reading), when the reader is sure enough.
A pipeline that holds a reader calls `read_prompts` before any stage sees the words, so prior,
decoder and the reranking of candidates all read the caption."""
from __future__ import annotations

import torch

from t2i.checkpoint import CheckpointError, Component
from t2i.text.encoder import get_text_encoder
from t2i.text.scene_reading import WORLD, read_scenes, say_scene
from t2i.text.shapes_wording import parse_caption


def check_reader(reader: Component | None) -> None:
    """A reader whose fields do not have the shapes world's classes cannot be read here."""
    wrong = {k: getattr(reader.model.config, k) for k in WORLD if getattr(reader.model.config, k) != WORLD[k]} if reader is not None else {}
    if wrong:
        raise CheckpointError(f"the scene reader's classes {wrong} are not the shapes world's {WORLD}")


@torch.no_grad()
def read_prompts(reader: Component | None, prompts: list[str], above: float, max_length: int = 32) -> list[str]:
    """Each prompt, or the caption of the scene read from it where the reading's confidence is
    above `above` (1: never). A prompt that already is a caption is kept as it is."""
    todo = [i for i, p in enumerate(prompts) if parse_caption(p) is None]
    if reader is None or above >= 1 or not todo:
        return list(prompts)
    enc = get_text_encoder(max_length).encode([prompts[i] for i in todo])
    scenes, confidence = read_scenes(reader.model(enc.tokens, enc.mask))
    out = list(prompts)
    for i, scene, sure in zip(todo, scenes, confidence.tolist()):
        if scene is not None and sure > above:
            out[i] = say_scene(scene)
    return out
