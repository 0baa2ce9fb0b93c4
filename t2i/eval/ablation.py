"""`t2i eval ablation`: what the decoder is conditioned on (DALL-E 2, section 5.1, figure 3).

The same decoder, the same seeds, three conditionings:
- caption only: the text tokens, with no image embedding (the decoder's learned null
  embedding, which stands where the paper passes zeros);
- text embedding: the caption's CLIP *text* embedding in place of an image embedding;
- prior: the image embedding the prior draws from the text embedding (full unCLIP).
The difference between the last two rows is what the prior buys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from t2i.eval.common import generate_images, markdown_table, write_json
from t2i.eval.sheets import save_sheet

CONDITIONINGS = {"none": "caption only", "text": "text embedding", "prior": "prior (unCLIP)"}
GRID_PROMPTS = {
    "shapes": ["a red circle", "a blue square", "two triangles", "a circle to the left of a square", "a green triangle and a yellow circle", "three squares"],
    "emoji": ["grinning face", "red apple", "cat face", "rocket", "pizza", "sun"],
}


def run_ablation(pipe, *, benchmark: str, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    """Score each conditioning on the benchmark; write a table and one picture grid (a row per conditioning)."""
    rows, grid_images, grid_captions = [], [], []
    for mode, label in CONDITIONINGS.items():
        opts = {**options, "image_embedding": mode}
        if benchmark == "shapes":
            from t2i.eval.shapes import shapes_benchmark, shapes_table

            summary = shapes_benchmark(pipe, samples=samples, seed=seed, limit=limit, batch_size=batch_size, **opts)["summary"]
            rows.append(shapes_table(summary, label))
        elif benchmark == "emoji":
            from t2i.eval.emoji import evaluate_split

            f, _, _ = evaluate_split(pipe, "train", samples=samples, seed=seed, limit=limit, batch_size=batch_size, options=opts)
            rows.append({"": label, "fidelity@5": f["fidelity@5"], "clip_score": f["clip_score"], "r_precision": f["r_precision"], "fd_clip": f["fd_clip"]})
        else:
            raise ValueError(f"benchmark must be shapes or emoji, got {benchmark!r}")
        shown = GRID_PROMPTS[benchmark]
        grid_images += list(generate_images(pipe, shown, samples=1, seed=seed, batch_size=len(shown), options=opts, desc="grid"))
        grid_captions += [f"{label}: {p}" for p in shown]
    result = {"benchmark": benchmark, "samples": samples, "seed": seed, "limit": limit, "rows": rows}
    if out_dir is not None:
        out = Path(out_dir)
        write_json(out, "ablation.json", result)
        (out / "ablation.md").write_text(f"Decoder conditioning ablation on {benchmark} ({samples} samples per prompt, seed {seed})\n\n" + markdown_table(rows))
        save_sheet(out / "ablation.png", grid_images, grid_captions, columns=len(GRID_PROMPTS[benchmark]))
    return result
