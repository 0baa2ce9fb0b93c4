"""Two pipelines on the same shapes paraphrases, prompt by prompt: how much the second gains.

    python scripts/compare_prompt_evals.py BEFORE/prompts-shapes.json AFTER/prompts-shapes.json [BEFORE2 AFTER2 ...]

Each file is what `t2i eval prompts --model M -o DIR` writes for shapes; both of a pair must come
from the same prompts, samples and seed. Several pairs (say the ninth and tenth blind sets) are
pooled. Prints, per task, AFTER − BEFORE on the paraphrases and on their canonical prompts with
a 95% bootstrap interval over prompts (paired: each prompt against itself, which is far tighter
than comparing two means), then each pipeline's pass rates and its paraphrase − canonical gap.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from t2i.data.shapes_eval import TASKS
from t2i.eval.metrics import bootstrap_mean_interval


def load_pairs(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    if len(paths) % 2:
        raise SystemExit("compare_prompt_evals: give the files in pairs, BEFORE AFTER")
    before, after = [], []
    for a, b in zip(paths[::2], paths[1::2]):
        rows_a, rows_b = (json.loads(p.read_text(encoding="utf-8"))["per_prompt"] for p in (a, b))
        if [r["prompt"] for r in rows_a] != [r["prompt"] for r in rows_b]:
            raise SystemExit(f"compare_prompt_evals: {a} and {b} graded different prompts")
        before += rows_a
        after += rows_b
    return before, after


def _mean(rows: list[dict], task: str, key: str) -> float:
    return float(np.mean([r[key] for r in rows if task in ("overall", r["task"])]))


def compare(before: list[dict], after: list[dict]) -> list[str]:
    """Markdown lines, task by task: the paired differences, then each side's pass rates and gap."""
    tasks = [t for t in TASKS if any(r["task"] == t for r in before)] + ["overall"]
    lines = ["| after − before | " + " | ".join(tasks) + " |", "| --- |" + " --- |" * len(tasks)]
    for key, name in (("paraphrase_pass", "paraphrases"), ("canonical_pass", "canonical")):
        cells = []
        for task in tasks:
            diff = np.array([b[key] - a[key] for a, b in zip(before, after) if task in ("overall", a["task"])])
            lo, hi = bootstrap_mean_interval(diff)
            cells.append(f"{diff.mean():+.3f} ({lo:+.3f} to {hi:+.3f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for rows, name in ((before, "before"), (after, "after")):
        para, canon = ([_mean(rows, t, key) for t in tasks] for key in ("paraphrase_pass", "canonical_pass"))
        lines.append(f"| {name}: paraphrases / canonical | " + " | ".join(f"{p:.3f} / {c:.3f}" for p, c in zip(para, canon)) + " |")
        lines.append(f"| {name}: gap | " + " | ".join(f"{p - c:+.3f}" for p, c in zip(para, canon)) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="prompts-shapes.json files, in pairs: BEFORE AFTER")
    before, after = load_pairs(parser.parse_args(argv).files)
    print(f"{len(before)} prompts")
    print("\n".join(compare(before, after)))


if __name__ == "__main__":
    main(sys.argv[1:])
