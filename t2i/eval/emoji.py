"""`t2i eval emoji`: fidelity@5, CLIP score, R-precision and Fréchet distances, per split.

Each split (training captions, held-out captions) takes one caption per base emoji, a fixed
random choice of `limit` of them, and `samples` images per caption. Every metric comes with the
same figure for real images, its floor or ceiling:
- fidelity@5: the generated image's 5 nearest dataset images (pixel L2 at 16×16) include its
  emoji in any skin tone (the real images of those emoji score 1: each is its own nearest).
- CLIP score: cosine between the image's CLIP embedding and its caption's (real: the true image).
- R-precision: the true caption ranks first among itself and 99 random captions of the split.
- FD (CLIP image embeddings, and pixels at 16×16) between generated images and all real images of
  the split; the real floor is the FD between two random halves of those real images.
The project's own CLIP (the pipeline's) is the feature extractor, so CLIP figures compare
models that share a CLIP; the pixel FD is model-independent.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2i.data.dataset import resize_uint8
from t2i.data.emoji import emoji_categories, load_emoji
from t2i.data.search_words import one_image_per_group
from t2i.eval.common import generate_images, markdown_table, write_json
from t2i.eval.judge import Judge, default_judge
from t2i.eval.metrics import clip_score, frechet_distance, pixel_features16, r_precision
from t2i.eval.sheets import save_sheet

SPLITS = ("train", "heldout")
COLUMNS = ["split", "images", "fidelity@5", "clip_score", "r_precision", "fd_clip", "fd_pixel16"]
PER_CATEGORY_SHOWN = 8


def fidelity_hits(generated: np.ndarray, target_groups: np.ndarray, reference: np.ndarray, reference_groups: np.ndarray, k: int = 5) -> np.ndarray:
    """For each generated image, whether its k nearest reference images (pixel L2 at 16×16)
    include one of its target group (the emoji in any skin tone)."""
    nearest = torch.cdist(pixel_features16(generated), pixel_features16(reference)).topk(k, largest=False).indices
    return (torch.from_numpy(reference_groups)[nearest] == torch.from_numpy(target_groups)[:, None]).any(dim=1).numpy()


def fidelity_at_k(generated: np.ndarray, target_groups: np.ndarray, reference: np.ndarray, reference_groups: np.ndarray, k: int = 5) -> float:
    """Fraction of generated images that pass fidelity_hits."""
    return float(fidelity_hits(generated, target_groups, reference, reference_groups, k).mean())


def _halves_fd(features: torch.Tensor, seed: int = 0) -> float:
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(features)))
    half = len(features) // 2
    return frechet_distance(features[order[:half]], features[order[half : 2 * half]])


def chosen_captions(split: str, limit: int | None) -> tuple[np.ndarray, list[str]]:
    """Indices into load_emoji(split) of one image per base emoji (a fixed random choice of
    `limit`, default 200), sorted, and each one's first caption."""
    data = load_emoji(64, split)
    first = np.asarray(one_image_per_group(data))  # one image per base emoji, the first of its group
    chosen = np.sort(np.random.default_rng(0).choice(first, size=min(limit or 200, len(first)), replace=False))
    return chosen, [data.captions[i][0] for i in chosen]


def evaluate_split(pipe, split: str, *, samples: int, seed: int, limit: int | None, batch_size: int, options: dict,
                   image_embeds=None, judge: Judge | None = None) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Generate for one split and measure it; returns (figures, images, the chosen dataset indices).
    image_embeds, caption-major, replaces the prior's embeddings (see generate_images). The CLIP
    figures come from `judge` (default: the shipped emoji model's CLIP), not from the pipeline."""
    judge = judge or default_judge("emoji")
    data, everything = load_emoji(64, split), load_emoji(64, "all")
    chosen, prompts = chosen_captions(split, limit)
    images = generate_images(pipe, prompts, samples=samples, seed=seed, batch_size=batch_size, options=options, desc=f"eval {split}", image_embeds=image_embeds)
    if images.shape[1] != 64:  # fidelity@5 compares at the dataset's size
        images = resize_uint8(images, 64)
    targets = np.repeat(data.groups[chosen], samples)
    text = judge.embed_texts(prompts)
    caption_ids = torch.arange(len(prompts)).repeat_interleave(samples)
    real_all = judge.embed_dataset(f"emoji-64-{split}", data.images)
    generated, real_chosen = judge.embed_images(images), real_all[torch.from_numpy(chosen)]
    pixels_real = pixel_features16(data.images)
    figures = {
        "captions": len(prompts), "images": len(images),
        "fidelity@5": fidelity_at_k(images, targets, everything.images, everything.groups),
        "fidelity@5_real": fidelity_at_k(data.images[chosen], data.groups[chosen], everything.images, everything.groups),
        "clip_score": clip_score(generated, text[caption_ids]), "clip_score_real": clip_score(real_chosen, text),
        "r_precision": r_precision(generated, caption_ids, text, seed=seed), "r_precision_real": r_precision(real_chosen, torch.arange(len(prompts)), text, seed=seed),
        "fd_clip": frechet_distance(generated, real_all), "fd_clip_real_halves": _halves_fd(real_all),
        "fd_pixel16": frechet_distance(pixel_features16(images), pixels_real), "fd_pixel16_real_halves": _halves_fd(pixels_real),
        "real_images": len(data.images), "judge": judge.name,
    }
    return figures, images, chosen


def emoji_rows(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The emoji table: per split, the generated figures, then the real images' reference."""
    rows = []
    for split, f in summary.items():
        rows.append({"split": split, "images": f["images"], "fidelity@5": f["fidelity@5"], "clip_score": f["clip_score"],
                     "r_precision": f["r_precision"], "fd_clip": f["fd_clip"], "fd_pixel16": f["fd_pixel16"]})
        rows.append({"split": f"{split} (real images)", "images": f["real_images"], "fidelity@5": f["fidelity@5_real"], "clip_score": f["clip_score_real"],
                     "r_precision": f["r_precision_real"], "fd_clip": f["fd_clip_real_halves"], "fd_pixel16": f["fd_pixel16_real_halves"]})
    return rows


def emoji_benchmark(pipe, *, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None, splits=SPLITS, **options) -> dict[str, Any]:
    summary, sheets = {}, {}
    for split in splits:
        summary[split], images, chosen = evaluate_split(pipe, split, samples=samples, seed=seed, limit=limit, batch_size=batch_size, options=options)
        sheets[split] = (images, chosen)
    result = {"summary": summary, "samples": samples, "seed": seed}
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out, "emoji.json", result)
        header = f"Emoji: {samples} samples per caption, seed {seed}. Real-image rows give each metric's reference " \
                 "(FD: two random halves of the real images).\n\n"
        (out / "emoji.md").write_text(header + markdown_table(emoji_rows(summary), COLUMNS))
        for split, (images, chosen) in sheets.items():
            write_category_sheets(out, split, images, chosen, samples)
    return result


def write_category_sheets(out: Path, split: str, images: np.ndarray, chosen: np.ndarray, samples: int) -> None:
    """One sheet per emoji category: the first sample of up to 8 captions of that category."""
    data = load_emoji(64, split)
    categories = np.asarray(emoji_categories(split))[chosen]
    by_category: dict[str, list[int]] = defaultdict(list)
    for k, category in enumerate(categories):
        if len(by_category[category]) < PER_CATEGORY_SHOWN:
            by_category[category].append(k * samples)
    for category, picked in by_category.items():
        slug = re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")
        save_sheet(out / f"emoji-{split}-{slug}.png", [images[i] for i in picked], [data.captions[chosen[i // samples]][0] for i in picked], columns=4)
