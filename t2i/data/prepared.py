"""A dataset prepared once on disk, for data that does not fit in memory (`t2i data prepare`).

A user folder, CSV or JSONL is decoded, cropped and resized once into a folder:

    dataset.json    format version, kind, image count and size, the source, skip counts
    images.u8       every image, uint8 (N, size, size, 3), row after row: memory-mapped when read
    captions.jsonl  one line per image: {"name": ..., "captions": [...]}
    skipped.tsv     every file left out, with the reason ("unreadable", "missing", ...); csv's
                    quoting, tab-separated

Training reads it like any dataset (`--data DIR`): the images stay on disk and a batch pages in
only its rows, and the caption encodings live in the on-disk text cache, mapped too
(t2i/text/cache.py). Nothing is decoded at training time.
"""
from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from t2i.data.dataset import ImageCaptionSet
from t2i.data.folder import captioned, decoded, list_source, skip_summary
from t2i.errors import InputError

KIND = "t2i-prepared-dataset"
FORMAT_VERSION = 1


def is_prepared(path: str | Path) -> bool:
    """A folder `t2i data prepare` wrote (its dataset.json says so)."""
    try:
        return json.loads((Path(path) / "dataset.json").read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def prepare(source: str | Path, folder: Path, size: int, *, workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Write the prepared form of `source` into the (new, empty) `folder`; returns dataset.json's content.
    Images are decoded by `workers` processes, in order; memory stays at a few images per worker."""
    if size < 1:
        raise InputError(f"image size must be positive, got {size}")
    root = Path(source).expanduser()
    listing, skipped = list_source(root)
    jobs = captioned(listing, skipped)
    if not jobs:
        raise InputError(f"no images with captions in {root}" + (f" ({skip_summary(skipped)})" if skipped else ""))
    kept = 0
    with (folder / "images.u8").open("wb") as out, (folder / "captions.jsonl").open("w", encoding="utf-8") as captions:
        for path, texts, pixels in decoded(jobs, size, skipped, workers=workers, progress=progress):
            out.write(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
            captions.write(json.dumps({"name": path.stem, "captions": texts}, ensure_ascii=False) + "\n")
            kept += 1
    if not kept:
        raise InputError(f"no usable images in {root} ({skip_summary(skipped)})")
    with (folder / "skipped.tsv").open("w", encoding="utf-8", newline="") as f:  # csv quotes a name with a tab or a line break
        rows = csv.writer(f, delimiter="\t", lineterminator="\n")
        rows.writerow(["reason", "path"])
        rows.writerows([reason, str(path)] for reason, path in skipped)
    info = {"format_version": FORMAT_VERSION, "kind": KIND, "count": kept, "size": size, "source": str(root.resolve()),
            "skipped": dict(Counter(reason for reason, _ in skipped))}
    (folder / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")  # last: the folder is complete
    return {**info, "first_skipped": [str(p) for _, p in skipped[:3]]}


def load_prepared(path: str | Path, size: int) -> ImageCaptionSet:
    """A prepared dataset, its images memory-mapped (read-only). Another `size` than it was
    prepared at is resized into memory, with a warning: prepare at the size you train at."""
    root = Path(path)
    try:
        info = json.loads((root / "dataset.json").read_text())
        count, side = int(info["count"]), int(info["size"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{root}: not a readable prepared dataset ({e})") from None
    if info.get("kind") != KIND or info.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"{root}: not a prepared dataset this t2i reads (kind {info.get('kind')!r}, version {info.get('format_version')!r})")
    pixels = root / "images.u8"
    expected = count * side * side * 3
    if not pixels.is_file() or pixels.stat().st_size != expected:
        raise InputError(f"{pixels}: expected {expected} bytes for {count} images of {side}x{side}, found "
                         f"{pixels.stat().st_size if pixels.is_file() else 'no file'}; prepare the dataset again")
    captions, names = [], []
    try:
        with (root / "captions.jsonl").open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                captions.append(list(row["captions"]))
                names.append(str(row["name"]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{root / 'captions.jsonl'}: unreadable ({e}); prepare the dataset again") from None
    if len(captions) != count:
        raise InputError(f"{root / 'captions.jsonl'}: {len(captions)} lines for {count} images; prepare the dataset again")
    images = np.memmap(pixels, dtype=np.uint8, mode="r", shape=(count, side, side, 3))
    data = ImageCaptionSet(images=images, captions=captions, names=names)
    if size != side:
        warnings.warn(f"{root} was prepared at {side}x{side}; resizing all {count} images to {size}x{size} in memory "
                      f"(prepare it with --size {size} to train from disk)", stacklevel=2)
    return data.resized(size)
