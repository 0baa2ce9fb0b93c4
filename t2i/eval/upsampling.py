"""`t2i eval upsampling`: does a pipeline's super-resolution beat bicubic resizing?

Measured on cascade outputs, not on downsampled real images: the pipeline's first stage draws
the low-resolution images (the same seeds as a normal call, so they are the images the cascade
upsamples), which are then brought to the output size twice, by the pipeline's upsamplers and by
bicubic resizing. Both are compared with real images of the same prompts at the output size:

- patch FD: the Fréchet distance over every 8x8 patch (t2i.eval.metrics.patch_features);
- high-frequency energy, as a ratio to the real images' (1 = as much fine detail as real images);
- shapes: the shapes-world score of the upsampled images (emoji: fidelity is left to eval emoji).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from t2i.data.dataset import resize_uint8, to_model_range
from t2i.errors import InputError
from t2i.eval.common import generate_images, markdown_table, real_images, write_json
from t2i.eval.metrics import frechet_distance, high_frequency_energy, patch_features


def _prompts(benchmark: str, limit: int | None) -> tuple[list[str], list]:
    if benchmark == "shapes":
        from t2i.data.shapes_eval import canonical_prompts

        prompts = canonical_prompts(per_task=limit or 25)
        return [p.prompt for p in prompts], prompts
    from t2i.eval.emoji import chosen_captions

    _, captions = chosen_captions("train", limit or 100)
    return captions, []


def upsampling_benchmark(pipe, *, benchmark: str, samples: int = 2, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None,
                         **options) -> dict[str, Any]:
    if not pipe.upsampling_stages():
        raise InputError("this pipeline has no upsampling stage to measure")
    texts, scored = _prompts(benchmark, limit)
    low = generate_images(pipe.without_upsampling(), texts, samples=samples, seed=seed, batch_size=batch_size, options=options, desc="first stage")
    cascade = generate_images(pipe, texts, samples=samples, seed=seed, batch_size=batch_size, options=options, desc="cascade")
    size = cascade.shape[1]
    real = real_images(benchmark, texts, samples, seed, size)
    real_hf = high_frequency_energy(real)
    real_patches = patch_features(real)
    compared = [("bicubic", resize_uint8(low, size))]
    stages = len(pipe.upsampling_stages())
    # the last UNet against bicubic resizing of what the ones before it made, where the cascade ran it
    before_pipe = pipe.with_upsampling(stages - 1) if stages > 1 else None
    if before_pipe is not None and low.shape[1] < before_pipe.image_size < size:
        before = generate_images(before_pipe, texts, samples=samples, seed=seed, batch_size=batch_size, options=options, desc="all but the last upsampler")
        compared.append((f"upsamplers to {before.shape[1]}, then bicubic", resize_uint8(before, size)))
    rows = []
    for name, images in (*compared, ("pipeline upsampler", cascade)):
        row = {"upsampling": name, "size": f"{low.shape[1]}->{size}", "patch_fd": frechet_distance(patch_features(images), real_patches),
               "hf_energy_vs_real": high_frequency_energy(images) / real_hf}
        if scored:
            from t2i.eval.shapes import score_shapes

            summary = score_shapes(scored, images, samples)["summary"]
            row.update(shapes_overall=summary["overall"], shapes_held_out=summary["held_out"])
        rows.append(row)
    result = {"benchmark": benchmark, "samples": samples, "seed": seed, "limit": limit, "options": options, "rows": rows}
    if out_dir is not None:
        from t2i.image_grid import save_grid

        out = Path(out_dir)
        write_json(out, "upsampling.json", result)
        (out / "upsampling.md").write_text(f"Upsampling on cascade outputs ({benchmark}, {samples} samples per prompt, seed {seed})\n\n" + markdown_table(rows))
        shown = slice(0, min(8, len(cascade)))
        grid = np.concatenate([resize_uint8(low[shown], size), cascade[shown], real[shown]])
        save_grid(to_model_range(grid), out / "upsampling.png", rows=3)
    return result


