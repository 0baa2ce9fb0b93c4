"""The judge: the CLIP that scores generated images, loaded apart from the model under test.

CLIP score, R-precision and the CLIP Fréchet distance need image and text embeddings. Taken from
the generator's own CLIP, they could only score unCLIP pipelines, and a model would be graded by
its own component. The judge is fixed by name instead, by default the CLIP of the shipped model
of the same data ("emoji", "shapes"), so every system's pipelines are scored by the same CLIP.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from t2i.checkpoint import CheckpointError, Component, load_component
from t2i.pipelines.loading import is_pipeline_folder, shipped_models
from t2i.pipelines.sampling import clip_image_embeds


class Judge:
    def __init__(self, clip: Component, name: str) -> None:
        self.clip, self.name = clip, name
        self._kept: dict[str, torch.Tensor] = {}

    def embed_dataset(self, key: str, images: np.ndarray) -> torch.Tensor:
        """embed_images, kept under `key` (a benchmark's real images: a sweep reuses them per point)."""
        if key not in self._kept:
            self._kept[key] = self.embed_images(images)
        return self._kept[key]

    @classmethod
    def load(cls, name_or_path: str | Path) -> Judge:
        """The CLIP of a shipped model ("emoji", "shapes") or of a pipeline folder that has one."""
        shipped = shipped_models()
        path = shipped.get(str(name_or_path), Path(name_or_path))
        if not (is_pipeline_folder(path) and (path / "clip").is_dir()):
            raise CheckpointError(f"no judge '{name_or_path}': not a shipped model ({', '.join(shipped)}) or a pipeline folder with a CLIP")
        return cls(load_component(path / "clip", role="clip"), str(name_or_path))

    @torch.no_grad()
    def embed_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) at any size -> (N, E) unit image embeddings."""
        return clip_image_embeds(self.clip, images)

    @torch.no_grad()
    def embed_texts(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (N, E) unit text embeddings."""
        from t2i.text.encoder import get_text_encoder

        enc = get_text_encoder(int(self.clip.model.config.max_tokens)).encode(list(prompts))
        return self.clip.model.encode_text(enc.tokens, enc.mask, enc.pooled)


@lru_cache(maxsize=4)
def default_judge(data: str) -> Judge:
    """The judge of a benchmark's data: the shipped model of that name's CLIP."""
    return Judge.load(data)
