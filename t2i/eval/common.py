"""What every evaluation shares: batched generation with fixed seeds, and writing results."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2i.errors import InputError
from t2i.pipelines.base import generate_batches
from t2i.progress import StepBar


def generate_images(pipe, prompts: list[str], *, samples: int, seed: int, batch_size: int, options: dict, desc: str = "eval",
                    image_embeds: torch.Tensor | None = None) -> np.ndarray:
    """`samples` images per prompt, prompt-major, as uint8 (N, H, W, 3); an image's noise depends on
    (seed, prompt index, sample index) alone, so a figure is reproducible from the command line
    that produced it, whatever the batch size. image_embeds
    (len(prompts) * samples, E), prompt-major, replaces the prior's embeddings."""
    if samples < 1:
        raise InputError(f"samples must be >= 1, got {samples}")
    per_image = {"image_embedding": image_embeds} if image_embeds is not None else None
    out: list[np.ndarray] = []
    with StepBar(total=len(prompts) * samples, desc=desc, unit="img") as bar:
        for _, _, image in generate_batches(pipe, prompts, num_images=samples, seed=seed, batch_size=batch_size, per_image=per_image, **options):
            out.append(np.asarray(image))
            bar.update(1)
    return np.stack(out)


def real_images(benchmark: str, prompts: list[str], samples: int, seed: int, size: int) -> np.ndarray:
    """uint8 (len(prompts) * samples, size, size, 3), prompt-major: true images of each prompt.
    shapes: a new random scene per sample (seeded); emoji: the dataset image the caption names."""
    if benchmark == "shapes":
        from t2i.data.shapes import render_scene
        from t2i.data.shapes_eval import scene_for_prompt

        rng = np.random.default_rng(seed)
        return np.stack([render_scene(scene_for_prompt(p, rng, size), size) for p in prompts for _ in range(samples)])
    from t2i.data.dataset import resize_uint8
    from t2i.data.emoji import load_emoji

    data = load_emoji(64, "all")
    first = {}
    for i, captions in enumerate(data.captions):
        for c in captions:
            first.setdefault(c, i)
    missing = [p for p in prompts if p not in first]
    if missing:
        raise InputError(f"no emoji is captioned {missing[0]!r}")
    return resize_uint8(data.images[np.repeat([first[p] for p in prompts], samples)], size)


def write_json(out_dir: str | Path | None, name: str, result: dict[str, Any]) -> None:
    if out_dir is None:
        return
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(json.dumps(result, indent=2))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows of dicts -> a Markdown table; floats to 3 decimals, missing cells blank."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"
