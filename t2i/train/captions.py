"""A dataset's captions, encoded once by the frozen text encoder, drawn per image per step."""
from __future__ import annotations

import numpy as np
import torch

from t2i.data.dataset import ImageCaptionSet
from t2i.text.cache import encode_cached
from t2i.text.encoder import TextEncoding


class CaptionTable:
    """Every caption of every image, encoded (cached on disk); `draw` picks one per image."""

    def __init__(self, data: ImageCaptionSet, *, max_length: int = 32, progress: bool = False) -> None:
        flat = [c for caps in data.captions for c in caps]
        self.encoding, rows = encode_cached(flat, max_length=max_length, progress=progress)
        self.rows = torch.tensor(rows, dtype=torch.long)
        self.counts = torch.tensor([len(c) for c in data.captions], dtype=torch.long)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.texts = sorted(set(flat))  # the encoding's rows, in order

    def draw(self, image_index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B,) image indices -> (B,) rows of `encoding`, one of each image's captions at random."""
        u = torch.rand(len(image_index), generator=generator)
        pick = (u * self.counts[image_index]).long().clamp(max=self.counts[image_index] - 1)
        return self.rows[self.starts[image_index] + pick]

    def first_rows(self, image_index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Each image's first caption: a fixed caption for previews and evaluation."""
        return self.rows[self.starts[torch.as_tensor(image_index, dtype=torch.long)]]

    def batch(self, rows: torch.Tensor) -> TextEncoding:
        """The encoding of `rows`, trimmed to its longest caption and cast to float32."""
        return self.encoding.select(rows).trimmed().to(dtype=torch.float32)
