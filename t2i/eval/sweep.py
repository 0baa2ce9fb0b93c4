"""`t2i eval sweep`: one sampling option varied, every other held at the model's defaults.

Each point generates the benchmark's images with the same seeds and measures quality (shapes:
overall and held-out score; emoji: fidelity@5 and FD in CLIP space) and alignment (CLIP score).
Guidance sweeps plot quality against CLIP score, one point per scale (the classifier-free
guidance trade-off curve); step sweeps plot quality against steps, one line per sampler;
candidate sweeps plot quality against k (the prior's, or the decoder's CLIP reranking).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from t2i.data.shapes_eval import canonical_prompts
from t2i.errors import InputError
from t2i.eval.common import generate_images, markdown_table, write_json
from t2i.eval.judge import default_judge
from t2i.eval.metrics import clip_score
from t2i.pipelines.unclip import MAX_CANDIDATES, MAX_GUIDANCE, MAX_STEPS, SAMPLERS

PARAMS = ("prior-guidance", "prior-candidates", "decoder-guidance", "decoder-text-guidance", "decoder-candidates", "steps", "sampler")
# Whole-number parameters and their ranges.
INTEGER_RANGES = {"steps": (1, MAX_STEPS), "prior-candidates": (1, MAX_CANDIDATES), "decoder-candidates": (1, MAX_CANDIDATES)}
BENCHMARKS = ("shapes", "emoji")
QUALITY = {"shapes": ("overall", "held_out"), "emoji": ("fidelity@5", "fd_clip")}


def parse_values(param: str, values: list[str]) -> list[Any]:
    """Command-line strings -> the values of `param`, checked; a bad one is a ValueError naming it."""
    if param not in PARAMS:
        raise InputError(f"--param must be one of {', '.join(PARAMS)}, got {param!r}")
    if not values:
        raise InputError("--values needs at least one value")
    out: list[Any] = []
    for text in values:
        if param == "sampler":
            if text not in SAMPLERS:
                raise InputError(f"sampler value must be one of {', '.join(SAMPLERS)}, got {text!r}")
            out.append(text)
        elif param in INTEGER_RANGES:
            lo, hi = INTEGER_RANGES[param]
            if not text.isdigit() or not lo <= int(text) <= hi:
                raise InputError(f"{param} value must be a whole number between {lo} and {hi}, got {text!r}")
            out.append(int(text))
        else:
            try:
                v = float(text)
            except ValueError:
                raise InputError(f"{param} value must be a number, got {text!r}") from None
            if not 0.0 <= v <= MAX_GUIDANCE:
                raise InputError(f"{param} value must be between 0 and {MAX_GUIDANCE}, got {text!r}")
            out.append(v)
    if len(set(out)) != len(out):
        raise InputError(f"--values repeats a value: {' '.join(values)}")
    return out


def sweep_points(param: str, values: list[Any]) -> list[dict[str, Any]]:
    """The sampling overrides of each point. A step sweep runs every value under each sampler and
    sets prior and decoder steps together."""
    if param == "steps":
        return [{"sampler": s, "prior_steps": v, "decoder_steps": v} for s in SAMPLERS for v in values]
    return [{param.replace("-", "_"): v} for v in values]


def measure(pipe, benchmark: str, *, samples: int, seed: int, limit: int | None, batch_size: int, options: dict) -> dict[str, float]:
    """Quality and CLIP score of one setting on the benchmark's prompts."""
    if benchmark == "emoji":
        from t2i.eval.emoji import evaluate_split

        f, _, _ = evaluate_split(pipe, "train", samples=samples, seed=seed, limit=limit, batch_size=batch_size, options=options)
        return {k: f[k] for k in ("fidelity@5", "fd_clip", "clip_score", "r_precision")}
    from t2i.eval.shapes import score_shapes

    prompts = canonical_prompts(per_task=limit or 50)
    texts = [p.prompt for p in prompts]
    images = generate_images(pipe, texts, samples=samples, seed=seed, batch_size=batch_size, options=options, desc="sweep")
    summary = score_shapes(prompts, images, samples)["summary"]
    judge = default_judge("shapes")  # the same CLIP scores every model
    text, ids = judge.embed_texts(texts), torch.arange(len(texts)).repeat_interleave(samples)
    return {"overall": summary["overall"], "held_out": summary["held_out"], "clip_score": clip_score(judge.embed_images(images), text[ids])}


def run_sweep(pipe, param: str, values: list[Any], *, benchmark: str, samples: int = 2, seed: int = 0, limit: int | None = None,
              batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    if benchmark not in BENCHMARKS:
        raise InputError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    rows = []
    for point in sweep_points(param, values):
        figures = measure(pipe, benchmark, samples=samples, seed=seed, limit=limit, batch_size=batch_size, options={**options, **point})
        rows.append({**point, **figures})
    result = {"param": param, "benchmark": benchmark, "samples": samples, "seed": seed, "limit": limit, "rows": rows}
    if out_dir is not None:
        out = Path(out_dir)
        stem = f"sweep-{param}"
        write_json(out, f"{stem}.json", result)
        (out / f"{stem}.md").write_text(f"Sweep of {param} on {benchmark} ({samples} samples per prompt, seed {seed})\n\n" + markdown_table(rows))
        plot_sweep(result, out / f"{stem}.png")
    return result


def plot_sweep(result: dict[str, Any], path: Path) -> Path:
    """Guidance: each quality figure against CLIP score, points labelled by scale. Steps: quality
    against steps, one line per sampler. Sampler: quality per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    param, rows = result["param"], result["rows"]
    ys = QUALITY[result["benchmark"]]
    fig, axes = plt.subplots(1, len(ys), figsize=(4.2 * len(ys), 3.4), squeeze=False)
    for ax, y in zip(axes[0], ys):
        if param.endswith("guidance"):
            key = param.replace("-", "_")
            xs, vs = [r["clip_score"] for r in rows], [r[y] for r in rows]
            ax.plot(xs, vs, "o-")
            for r, x, v in zip(rows, xs, vs):
                ax.annotate(f"{r[key]:g}", (x, v), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.set_xlabel("CLIP score")
            ax.ticklabel_format(useOffset=False)  # CLIP scores differ in the 3rd decimal: no offset notation
        elif param == "steps":
            for sampler in dict.fromkeys(r["sampler"] for r in rows):
                part = [r for r in rows if r["sampler"] == sampler]
                ax.plot([r["decoder_steps"] for r in part], [r[y] for r in part], "o-", label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("steps (prior and decoder)")
            ax.legend()
        elif param.endswith("candidates"):
            key = param.replace("-", "_")
            ax.plot([r[key] for r in rows], [r[y] for r in rows], "o-")
            ax.set_xscale("log", base=2)
            ax.set_xlabel(f"{param.replace('-', ' ')} (k)")
        else:
            ax.bar([r["sampler"] for r in rows], [r[y] for r in rows])
            ax.set_xlabel("sampler")
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{result['benchmark']}: {param} sweep", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def guess_benchmark(model: str, pipe) -> str | None:
    """shapes or emoji for the shipped models and pipelines assembled from those datasets."""
    if Path(str(model)).name in BENCHMARKS:
        return Path(str(model)).name
    data = pipe.info.get("data")
    return data if data in BENCHMARKS else None


__all__ = ["PARAMS", "parse_values", "sweep_points", "run_sweep", "plot_sweep", "guess_benchmark"]
