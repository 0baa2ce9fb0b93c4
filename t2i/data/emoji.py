"""The emoji dataset that ships with t2i: Noto Color Emoji at 64x64 with CLDR captions.

The assets (t2i/assets/emoji/) are built by scripts/build_emoji.py: one lossless WebP
sprite sheet of 64x64 RGB tiles plus emoji.json with, per tile, its code points, captions,
group (skin-tone variants share their base emoji's group), category and held-out flag.
About 10% of base emoji are held out, by group, so no subject is on both sides.
search_words.json (scripts/build_emoji_search_words.py) adds the words people search for
each base emoji by, from emojilib; those are for retrieval and never trained on.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from PIL import Image

from t2i.data.dataset import ImageCaptionSet, resize_uint8
from t2i.errors import InputError

SPLITS = ("train", "heldout", "all")
NATIVE_SIZE = 64
# A plain path (not importlib.resources) also works while t2i is a namespace package
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "emoji"


@functools.lru_cache(maxsize=1)
def _decoded() -> tuple[np.ndarray, tuple[dict, ...]]:
    """All tiles (N, 64, 64, 3) and their records, decoded once per process.

    The array is read-only because every caller shares it; subsets copy.
    """
    index_file = ASSETS / "emoji.json"
    if not index_file.exists():
        raise FileNotFoundError(f"emoji assets missing at {ASSETS}; run scripts/build_emoji.py")
    meta = json.loads(index_file.read_text(encoding="utf-8"))
    tile, columns, records = int(meta["tile"]), int(meta["columns"]), tuple(meta["images"])
    with Image.open(ASSETS / meta["file"]) as sheet_image:
        sheet = np.asarray(sheet_image.convert("RGB"))
    # Row-major tiles: (rows, tile, columns, tile, 3) -> (rows * columns, tile, tile, 3)
    rows = sheet.shape[0] // tile
    tiles = sheet.reshape(rows, tile, columns, tile, 3).transpose(0, 2, 1, 3, 4).reshape(-1, tile, tile, 3)
    images = np.ascontiguousarray(tiles[: len(records)])
    if len(images) != len(records):
        raise ValueError(f"emoji sprite holds {len(images)} tiles but emoji.json lists {len(records)}")
    images.setflags(write=False)
    return images, records


def load_emoji(size: int = NATIVE_SIZE, split: str = "train") -> ImageCaptionSet:
    """Emoji images at `size` (64 or smaller, area-downsampled) for one split.

    split: "train" (about 90% of base emoji with all their skin-tone variants),
    "heldout" (the rest) or "all". Groups keep their ids across splits.
    """
    if split not in SPLITS:
        raise InputError(f"unknown emoji split {split!r}: expected one of {', '.join(SPLITS)}")
    if not 1 <= size <= NATIVE_SIZE:
        raise InputError(f"emoji size must be between 1 and {NATIVE_SIZE}, got {size}")
    images, records = _decoded()
    held = np.array([r["held_out"] for r in records], dtype=bool)
    keep = {"train": ~held, "heldout": held, "all": np.ones_like(held)}[split]
    index = np.flatnonzero(keep)
    captions = [list(records[i]["captions"]) for i in index]
    chosen = images[index]  # fancy indexing copies, so callers never touch the cache
    return ImageCaptionSet(
        images=chosen if size == NATIVE_SIZE else resize_uint8(chosen, size),
        captions=captions,
        groups=np.array([records[i]["group"] for i in index], dtype=np.int64),
        names=[c[0] for c in captions],
    )


def emoji_search_words(split: str = "train") -> list[list[str]]:
    """The search words of each image of `split` (its base emoji's, for skin-tone variants too),
    in load_emoji's order; empty lists when search_words.json is absent."""
    chosen = _split_records(split)
    path = ASSETS / "search_words.json"
    words = json.loads(path.read_text(encoding="utf-8"))["words"] if path.exists() else {}
    base: dict[int, list[str]] = {}
    for r in _decoded()[1]:  # a group's first record is its base emoji
        base.setdefault(r["group"], words.get(r["unified"], []))
    return [list(base[r["group"]]) for r in chosen]


def emoji_categories(split: str = "train") -> list[str]:
    """The Unicode category ("Smileys & Emotion", "Flags", ...) of each image of `split`, in
    load_emoji's order."""
    return [r["category"] for r in _split_records(split)]


def _split_records(split: str) -> list[dict]:
    """The records of `split`'s images, in load_emoji's order."""
    if split not in SPLITS:
        raise InputError(f"unknown emoji split {split!r}: expected one of {', '.join(SPLITS)}")
    return [r for r in _decoded()[1] if split == "all" or r["held_out"] == (split == "heldout")]
