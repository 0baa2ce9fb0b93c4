"""User data: images with captions from a folder, a CSV or a JSONL file.

Three layouts are accepted:
  folder  images (png/jpg/jpeg/webp/bmp, searched recursively), each with a same-named .txt
          file holding one caption per non-empty line;
  .csv    a header with `path` and `caption` columns, paths relative to the CSV's folder;
  .jsonl  one {"path": ..., "caption": ...} object per line (caption may also be a list).
Several rows for one path add captions. Images become RGB (alpha composited on white),
centre-cropped to a square and resized. Bad images are skipped and summarised in a single
warning, so one corrupt file never ends a training run.
"""
from __future__ import annotations

import csv
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SKIP_REASONS = ("unreadable", "missing", "without caption", "with unreadable caption")  # report order


def load_folder(path: str | Path, size: int) -> ImageCaptionSet:
    """Load a folder, CSV or JSONL dataset as (size, size) RGB images with their captions."""
    if size < 1:
        raise InputError(f"image size must be positive, got {size}")
    root = Path(path).expanduser()
    listing, skipped = list_source(root)
    images, captions, names = [], [], []
    for image_path, texts, pixels in decoded(captioned(listing, skipped), size, skipped):
        images.append(pixels)
        captions.append(texts)
        names.append(image_path.stem)
    if not images:
        raise InputError(f"no usable images in {root}" + (f" ({len(skipped)} found: {skip_summary(skipped)})" if skipped else ""))
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {len(images) + len(skipped)} images in {root} ({skip_summary(skipped)}; first: "
                      f"{', '.join(str(p) for _, p in skipped[:3])})", stacklevel=2)
    return ImageCaptionSet(images=np.stack(images), captions=captions, names=names)


def list_source(root: Path) -> tuple[dict[Path, list[str]], list[tuple[str, Path]]]:
    """A folder, CSV or JSONL source -> ({image path: its captions}, [(reason, path) skipped while listing])."""
    if not root.exists():
        raise FileNotFoundError(f"dataset path not found: {root}")
    skipped: list[tuple[str, Path]] = []
    if root.is_dir():
        return _scan_folder(root, skipped), skipped
    if root.suffix.lower() == ".csv":
        return _read_csv(root), skipped
    if root.suffix.lower() == ".jsonl":
        return _read_jsonl(root), skipped
    raise InputError(f"unsupported dataset file {root}: expected a folder, a .csv or a .jsonl file")


def captioned(listing: dict[Path, list[str]], skipped: list[tuple[str, Path]]) -> list[tuple[Path, list[str]]]:
    """The listed images that have captions; the others go to `skipped` ("without caption")."""
    jobs = []
    for path, texts in listing.items():
        if texts:
            jobs.append((path, texts))
        else:
            skipped.append(("without caption", path))
    return jobs


def decoded(jobs: list[tuple[Path, list[str]]], size: int, skipped: list[tuple[str, Path]], *, workers: int = 1,
            progress: bool = False) -> Iterator[tuple[Path, list[str], np.ndarray]]:
    """(path, captions, pixels) of each job whose image decodes, in order, decoded by `workers`
    processes (a pool when more than 1); the others go to `skipped` with their reason."""
    results = _load_all([(path, size) for path, _ in jobs], workers)
    if progress:
        from tqdm import tqdm

        results = tqdm(results, total=len(jobs), desc="decode", unit="img", dynamic_ncols=True)
    for (path, texts), pixels in zip(jobs, results):
        if isinstance(pixels, str):
            skipped.append((pixels, path))
        else:
            yield path, texts, pixels


def _load(job: tuple[Path, int]) -> np.ndarray | str:
    return load_image(*job)


def _load_all(jobs: list[tuple[Path, int]], workers: int) -> Iterator[np.ndarray | str]:
    if workers <= 1:
        yield from map(_load, jobs)
        return
    with get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers) as pool:
        yield from pool.imap(_load, jobs, chunksize=64)


def skip_summary(skipped: list[tuple[str, Path]]) -> str:
    """'3 unreadable, 1 missing': the reasons in report order, with their counts."""
    counts = Counter(reason for reason, _ in skipped)
    return ", ".join(f"{counts[reason]} {reason}" for reason in SKIP_REASONS if counts[reason])


def _scan_folder(root: Path, skipped: list[tuple[str, Path]]) -> dict[Path, list[str]]:
    listing: dict[Path, list[str]] = {}
    for image_path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        caption_file = image_path.with_suffix(".txt")
        if not caption_file.is_file():
            listing[image_path] = []
            continue
        try:
            lines = caption_file.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            skipped.append(("with unreadable caption", image_path))
            continue
        listing[image_path] = _dedupe(lines)
    return listing


def _read_csv(manifest: Path) -> dict[Path, list[str]]:
    listing: dict[Path, list[str]] = {}
    with manifest.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns or "caption" not in columns:
            raise InputError(f"{manifest}: header must contain 'path' and 'caption' columns, got {columns}")
        reader.fieldnames = columns
        for line, row in enumerate(reader, start=2):
            if not (row.get("path") or "").strip():
                raise InputError(f"{manifest}:{line}: empty path")
            _add(listing, manifest, row["path"], [row.get("caption") or ""])
    return listing


def _read_jsonl(manifest: Path) -> dict[Path, list[str]]:
    listing: dict[Path, list[str]] = {}
    with manifest.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                raise InputError(f"{manifest}:{line}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("path"), str):
                raise InputError(f"{manifest}:{line}: expected an object with a string 'path'")
            caption = row.get("caption", "")
            texts = caption if isinstance(caption, list) else [caption]
            if not all(isinstance(t, str) for t in texts):
                raise InputError(f"{manifest}:{line}: 'caption' must be a string or a list of strings")
            _add(listing, manifest, row["path"], texts)
    return listing


def _add(listing: dict[Path, list[str]], manifest: Path, image: str, texts: list[str]) -> None:
    """Merge captions of rows naming the same file (however the path is spelled)."""
    key = (manifest.parent / image.strip()).resolve()
    listing[key] = _dedupe(listing.get(key, []) + texts)


def _dedupe(lines: list[str]) -> list[str]:
    return [t for t in dict.fromkeys(line.strip() for line in lines) if t]


def load_image(image_path: Path, size: int) -> np.ndarray | str:
    """The image as uint8 (size, size, 3), or why it cannot be used ("missing", "unreadable")."""
    if not image_path.is_file():
        return "missing"
    try:
        with Image.open(image_path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)  # phone photos store rotation in EXIF
            image = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        # PIL raises all of these for truncated, corrupt or mislabelled files
        return "unreadable"
    image = ImageOps.fit(image, (size, size), method=Image.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(image, dtype=np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on white (the background the models learn)."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")
