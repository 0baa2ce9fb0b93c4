"""`t2i eval ablation`: what the decoder is conditioned on (DALL-E 2, section 5.1, figure 3).

The same decoder, the same seeds, four conditionings:
- caption only: the text tokens, with no image embedding (the decoder's learned null
  embedding, which stands where the paper passes zeros);
- text embedding: the caption's CLIP *text* embedding in place of an image embedding;
- prior: the image embedding the prior draws from the text embedding (full unCLIP);
- real image embedding: the CLIP embedding of a real image of the caption (shapes: a freshly
  rendered true scene per sample; emoji: the dataset's image), i.e. a perfect prior.
The difference between rows 2 and 3 is what the prior buys; between rows 3 and 4, what a
better prior could still buy. Row 4 falling short of 1 is the decoder's (or CLIP's) doing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from t2i.errors import InputError
from t2i.eval.common import generate_images, markdown_table, real_images, write_json
from t2i.eval.sheets import save_sheet

CONDITIONINGS = {"none": "caption only", "text": "text embedding", "prior": "prior (unCLIP)", "real": "real image embedding"}
GRID_PROMPTS = {
    "shapes": ["a red circle", "a blue square", "two triangles", "a circle to the left of a square", "a green triangle and a yellow circle", "three squares"],
    "emoji": ["grinning face", "red apple", "cat face", "rocket", "pizza", "sun"],
}


def _real_embeds(pipe, benchmark: str, prompts: list[str], samples: int, seed: int) -> torch.Tensor:
    from t2i.pipelines.sampling import clip_image_embeds

    return clip_image_embeds(pipe.clip, real_images(benchmark, prompts, samples, seed, pipe.clip.model.config.image_size))


def run_ablation(pipe, *, benchmark: str, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    """Score each conditioning on the benchmark; write a table and one picture grid (a row per conditioning)."""
    if benchmark not in GRID_PROMPTS:
        raise InputError(f"benchmark must be shapes or emoji, got {benchmark!r}")
    rows, grid_images, grid_captions = [], [], []
    shown = GRID_PROMPTS[benchmark]
    for mode, label in CONDITIONINGS.items():
        opts = {**options, "image_embedding": mode} if mode != "real" else dict(options)
        if benchmark == "shapes":
            from t2i.data.shapes_eval import canonical_prompts
            from t2i.eval.shapes import shapes_benchmark, shapes_table

            given = _real_embeds(pipe, benchmark, [p.prompt for p in canonical_prompts(per_task=limit or 50)], samples, seed) if mode == "real" else None
            summary = shapes_benchmark(pipe, samples=samples, seed=seed, limit=limit, batch_size=batch_size, image_embeds=given, **opts)["summary"]
            rows.append(shapes_table(summary, label))
        else:
            from t2i.eval.emoji import chosen_captions, evaluate_split

            given = _real_embeds(pipe, benchmark, chosen_captions("train", limit)[1], samples, seed) if mode == "real" else None
            f, _, _ = evaluate_split(pipe, "train", samples=samples, seed=seed, limit=limit, batch_size=batch_size, options=opts, image_embeds=given)
            rows.append({"": label, "fidelity@5": f["fidelity@5"], "clip_score": f["clip_score"], "r_precision": f["r_precision"], "fd_clip": f["fd_clip"]})
        given = _real_embeds(pipe, benchmark, shown, 1, seed) if mode == "real" else None
        grid_images += list(generate_images(pipe, shown, samples=1, seed=seed, batch_size=len(shown), options=opts, desc="grid", image_embeds=given))
        grid_captions += [f"{label}: {p}" for p in shown]
    result = {"benchmark": benchmark, "samples": samples, "seed": seed, "limit": limit, "rows": rows}
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out, "ablation.json", result)
        (out / "ablation.md").write_text(f"Decoder conditioning ablation on {benchmark} ({samples} samples per prompt, seed {seed})\n\n" + markdown_table(rows))
        save_sheet(out / "ablation.png", grid_images, grid_captions, columns=len(GRID_PROMPTS[benchmark]))
    return result
