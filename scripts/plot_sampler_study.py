"""Plots and tables of scripts/sampler_study.sh: quality against steps, one line per sampler and
spacing, one figure per shipped model (docs/samplers-MODEL.png), and a Markdown table per model.

    python scripts/plot_sampler_study.py eval/samplers [--docs docs]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STEPS = [5, 8, 10, 15, 25, 50]
PANELS = {"shapes": ("overall", "held_out", "clip_score"), "emoji": ("fidelity@5", "fd_clip", "clip_score")}


def lines(root: Path, model: str) -> dict[str, list[dict]]:
    """'sampler spacing' -> its rows (steps ascending), for every finished line of the model; the
    50-step points of some lines are in root/steps50."""
    out: dict[str, list[dict]] = {}
    for path in sorted(root.glob(f"{model}-*/sweep-steps.json")) + sorted((root / "steps50").glob(f"{model}-*/sweep-steps.json")):
        sampler, spacing = path.parent.name[len(model) + 1 :].rsplit("-", 1)
        out.setdefault(f"{sampler} {spacing}", []).extend(json.loads(path.read_text())["rows"])
    return {label: sorted(rows, key=lambda r: r["decoder_steps"]) for label, rows in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    for model, panels in PANELS.items():
        found = lines(args.root, model)
        if not found:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
        for ax, key in zip(axes, panels):
            for label, rows in found.items():
                ax.plot([r["decoder_steps"] for r in rows], [r[key] for r in rows], "o-", label=label, markersize=3)
            ax.set_xscale("log")
            ax.set_xticks(STEPS, labels=[str(s) for s in STEPS])
            ax.minorticks_off()
            ax.set_xlabel("prior and decoder steps")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{model}: quality against steps per sampler (seed 0)", fontsize=10)
        fig.tight_layout()
        args.docs.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.docs / f"samplers-{model}.png", dpi=100)
        plt.close(fig)
        print(f"\n{model}\n\n| sampler | spacing | steps | " + " | ".join(panels) + " |")
        print("| --- | --- | --- | " + " | ".join("---" for _ in panels) + " |")
        for label, rows in found.items():
            for r in rows:
                print(f"| {label.replace(' ', ' | ')} | {r['decoder_steps']} | " + " | ".join(f"{r[k]:.3f}" for k in panels) + " |")


if __name__ == "__main__":
    main()
