"""Picture sheets for evaluation: images with their captions written underneath."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_SIZE = 10


def _wrap(text: str, width: float, draw: ImageDraw.ImageDraw, font) -> list[str]:
    """Greedy word wrap to `width` pixels; a word longer than a line gets a line of its own."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def captioned_sheet(images: list[np.ndarray | Image.Image], captions: list[str], *, columns: int = 6, scale: int = 2,
                    tile_width: int = 160, max_lines: int = 6) -> Image.Image:
    """Tiles of (image enlarged `scale`× with nearest-neighbour pixels, caption below), row by row."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if len(images) == 0:
        raise ValueError("no images to lay out")
    font = ImageFont.load_default(size=FONT_SIZE)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pics = [(im if isinstance(im, Image.Image) else Image.fromarray(im)).convert("RGB") for im in images]
    side = max(p.size[0] for p in pics) * scale
    width = max(tile_width, side)
    wrapped = [_wrap(c, width - 4, probe, font)[:max_lines] for c in captions]
    line_h = FONT_SIZE + 2
    tile_h = side + 4 + line_h * max(len(w) for w in wrapped)
    columns = min(columns, len(pics))
    rows = -(-len(pics) // columns)
    sheet = Image.new("RGB", (columns * (width + 4) + 4, rows * (tile_h + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (pic, lines) in enumerate(zip(pics, wrapped)):
        x, y = 4 + (i % columns) * (width + 4), 4 + (i // columns) * (tile_h + 4)
        sheet.paste(pic.resize((side, side), Image.NEAREST), (x + (width - side) // 2, y))
        for k, line in enumerate(lines):
            draw.text((x + 2, y + side + 2 + k * line_h), line, fill="black", font=font)
    return sheet


def save_sheet(path: str | Path, images, captions, **kw) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    captioned_sheet(images, captions, **kw).save(path)
    return path
