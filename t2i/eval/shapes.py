"""`t2i eval shapes`: docs/benchmarks/shapes-world.md on the canonical prompts.

Writes shapes.json (every image's verdict), shapes.md (the table), shapes-failures.png (failed
samples captioned with their prompt and what the scorer detected) and one sample sheet per task.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from t2i.data.shapes_eval import TASKS, EvalPrompt, canonical_prompts, score_image, summarize
from t2i.eval.common import generate_images, markdown_table, write_json
from t2i.eval.sheets import save_sheet

SUMMARY_COLUMNS = [*TASKS, "overall", "held_out"]
FAILURES_SHOWN = 48
PER_TASK_SHOWN = 12


def score_shapes(prompts: list[EvalPrompt], images: np.ndarray, samples: int) -> dict[str, Any]:
    """Score prompt-major images (`samples` per prompt): summary, counts and one row per image."""
    results, rows = [], []
    for i, image in enumerate(images):
        p = prompts[i // samples]
        r = score_image(image, p.prompt)
        results.append((p, r.passed))
        rows.append({"prompt": p.prompt, "task": p.task, "held_out": p.held_out, "passed": r.passed, "reason": r.reason})
    counts = Counter("held_out" if p.held_out else p.task for p, _ in results)
    return {"summary": summarize(results), "counts": dict(counts), "images": rows}


def shapes_table(summary: dict[str, float], label: str | None = None) -> dict[str, Any]:
    """One table row: the task scores, overall and held-out, optionally led by a label."""
    row = {"": label} if label is not None else {}
    row.update({k: summary[k] for k in SUMMARY_COLUMNS if k in summary})
    return row


def write_shapes_outputs(out_dir: str | Path, result: dict[str, Any], images: np.ndarray) -> None:
    out = Path(out_dir)
    write_json(out, "shapes.json", result)
    counts = result["counts"]
    header = f"Shapes world: {result['samples']} samples per prompt, seed {result['seed']}; images per column: " + \
        ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n\n"
    (out / "shapes.md").write_text(header + markdown_table([shapes_table(result["summary"])]))
    rows = result["images"]
    failed = [i for i, r in enumerate(rows) if not r["passed"]][:FAILURES_SHOWN]
    if failed:
        save_sheet(out / "shapes-failures.png", [images[i] for i in failed], [f"{rows[i]['prompt']}: {rows[i]['reason']}" for i in failed])
    for task in (*TASKS, "held_out"):
        picked = [i for i, r in enumerate(rows) if (r["held_out"] if task == "held_out" else (r["task"] == task and not r["held_out"]))][:PER_TASK_SHOWN]
        if picked:
            marks = [f"{'PASS' if rows[i]['passed'] else 'FAIL'} {rows[i]['prompt']}" for i in picked]
            save_sheet(out / f"shapes-{task}.png", [images[i] for i in picked], marks)


def shapes_benchmark(pipe, *, samples: int = 4, seed: int = 0, limit: int | None = None, batch_size: int = 32, out_dir=None,
                     image_embeds=None, **options) -> dict[str, Any]:
    """Generate `samples` images for each canonical prompt (`limit` per task, default 50) and score them.
    image_embeds, prompt-major, replaces the prior's embeddings (see generate_images)."""
    prompts = canonical_prompts(per_task=limit or 50)
    images = generate_images(pipe, [p.prompt for p in prompts], samples=samples, seed=seed, batch_size=batch_size, options=options, image_embeds=image_embeds)
    result = {**score_shapes(prompts, images, samples), "samples": samples, "seed": seed}
    if out_dir is not None:
        write_shapes_outputs(out_dir, result, images)
    return result
