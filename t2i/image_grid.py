"""Image grids for previews and multi-sample outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from t2i.data.dataset import to_uint8


def grid_image(images: list[Image.Image], *, rows: int | None = None, pad: int = 2) -> Image.Image:
    """Lay equal-sized PIL images out row by row on a white sheet."""
    if not images:
        raise ValueError("no images to lay out")
    n = len(images)
    cols = -(-n // rows) if rows else int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    w, h = images[0].size
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i, im in enumerate(images):
        sheet.paste(im, (pad + (i % cols) * (w + pad), pad + (i // cols) * (h + pad)))
    return sheet


def save_grid(x: torch.Tensor, path: Path, *, rows: int | None = None) -> Path:
    """float (N, 3, H, W) in [-1, 1] -> a PNG grid at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image([Image.fromarray(a) for a in to_uint8(x)], rows=rows).save(path)
    return path
