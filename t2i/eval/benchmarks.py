"""The quality figures of the unCLIP issue: the shapes-world score and emoji fidelity@5.

Both generate in batches with a fixed seed per batch, so a figure is reproducible from the
command line that produced it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from t2i.progress import StepBar


def _generate(pipe, prompts: list[str], *, samples: int, seed: int, batch_size: int, options: dict) -> list[np.ndarray]:
    """samples images per prompt, prompt-major, as uint8 arrays; batch k uses seed + k."""
    per_batch = max(1, batch_size // samples)
    out: list[np.ndarray] = []
    with StepBar(total=len(prompts) * samples, desc="eval", unit="img") as bar:
        for k, start in enumerate(range(0, len(prompts), per_batch)):
            images = pipe(prompts[start : start + per_batch], num_images=samples, seed=seed + k, **options)
            out.extend(np.asarray(im) for im in images)
            bar.update(len(images))
    return out


def _write(out_dir: str | Path | None, name: str, result: dict[str, Any]) -> None:
    if out_dir is None:
        return
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(json.dumps(result, indent=2))


def shapes_benchmark(pipe, *, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    """shared/benchmarks/shapes-world.md on the canonical prompts: per-task, overall and held-out."""
    from t2i.data.shapes_eval import canonical_prompts, score_image, summarize

    prompts = canonical_prompts(per_task=limit or 50)
    images = _generate(pipe, [p.prompt for p in prompts], samples=samples, seed=seed, batch_size=batch_size, options=options)
    results, rows = [], []
    for i, image in enumerate(images):
        p = prompts[i // samples]
        r = score_image(image, p.prompt)
        results.append((p, r.passed))
        rows.append({"prompt": p.prompt, "task": p.task, "held_out": p.held_out, "passed": r.passed, "reason": r.reason})
    result = {"summary": summarize(results), "samples": samples, "seed": seed, "images": rows}
    _write(out_dir, "shapes.json", result)
    return result


def downsample16(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 768): area-downsampled to 16×16, flattened."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return F.interpolate(x, size=(16, 16), mode="area").flatten(1)


def fidelity_at_k(generated: np.ndarray, target_groups: np.ndarray, reference: np.ndarray, reference_groups: np.ndarray, k: int = 5) -> float:
    """Fraction of generated images whose k nearest reference images (pixel L2 at 16×16)
    include one of their target group (the emoji in any skin tone)."""
    g, r = downsample16(generated), downsample16(reference)
    nearest = torch.cdist(g, r).topk(k, largest=False).indices
    hits = (torch.from_numpy(reference_groups)[nearest] == torch.from_numpy(target_groups)[:, None]).any(dim=1)
    return float(hits.float().mean())


def emoji_fidelity(pipe, *, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    """fidelity@5 on `limit` (default 200) training captions, one per base emoji, fixed choice."""
    from t2i.data.emoji import load_emoji

    train, everything = load_emoji(64, "train"), load_emoji(64, "all")
    count = limit or 200
    _, first = np.unique(train.groups, return_index=True)  # one image per base emoji
    chosen = np.sort(np.random.default_rng(0).choice(first, size=min(count, len(first)), replace=False))
    prompts = [train.captions[i][0] for i in chosen]
    images = np.stack(_generate(pipe, prompts, samples=samples, seed=seed, batch_size=batch_size, options=options))
    if images.shape[1] != 64:
        images = np.asarray(F.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(64, 64), mode="bilinear").round().clamp(0, 255).byte().permute(0, 2, 3, 1))
    targets = np.repeat(train.groups[chosen], samples)
    score = fidelity_at_k(images, targets, everything.images, everything.groups)
    result = {"summary": {"fidelity@5": score, "captions": len(prompts), "images": len(images)}, "samples": samples, "seed": seed, "prompts": prompts}
    _write(out_dir, "emoji.json", result)
    return result
