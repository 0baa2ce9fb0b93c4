"""`t2i eval sweep`: one sampling option varied, every other held at the model's defaults.

Each point generates the benchmark's images with the same seeds and measures quality (shapes:
overall and held-out score, and the pixel FD to fresh renders of the same prompts; emoji:
fidelity@5 and FD in CLIP space) and alignment (CLIP score).
Guidance sweeps plot quality against CLIP score, one point per scale (the classifier-free
guidance trade-off curve); step sweeps plot quality against steps, one line per sampler;
candidate sweeps plot quality against k (the prior's, or the decoder's CLIP reranking).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from t2i import registry
from t2i.data.shapes_eval import canonical_prompts
from t2i.errors import InputError
from t2i.eval.common import generate_images, markdown_table, real_images, write_json
from t2i.eval.judge import default_judge
from t2i.eval.metrics import clip_score, frechet_distance, pixel_features16

BENCHMARKS = ("shapes", "emoji")
QUALITY = {"shapes": ("overall", "held_out"), "emoji": ("fidelity@5", "fd_clip")}


def parse_values(param: str, values: list[str]) -> list[Any]:
    """Command-line strings -> the values of `param`, checked; a bad one is an InputError naming it.
    `param` is any sampling option of a registered system (as its flag, e.g. decoder-guidance,
    base-guidance, sampler), or `steps`: the main step counts of the model, every sampler."""
    options = registry.sampling_options()
    name = param.replace("-", "_")
    if name != "steps" and name not in options:
        raise InputError(f"--param must be steps or a sampling option ({', '.join(n.replace('_', '-') for n in options)}), got {param!r}")
    if not values:
        raise InputError("--values needs at least one value")
    # a step count is checked as any system's first step option is
    probe = next(n for n in options if n.endswith("_steps")) if name == "steps" else name
    kind = options[probe][0].metadata["kind"]
    out: list[Any] = []
    for text in values:
        try:
            value = kind(text) if kind is not str else text
        except ValueError:
            raise InputError(f"{param} value must be {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        out.append(value)
    # the option class's own range checks, on one of the systems that has it
    owner = registry.system(options[probe][1][0]).load_options_class()
    for value in out:
        owner().updated(**{probe: value})
    if len(set(out)) != len(out):
        raise InputError(f"--values repeats a value: {' '.join(values)}")
    return out


def sweep_points(param: str, values: list[Any], options_class: type, sampler: str | None = None) -> list[dict[str, Any]]:
    """The sampling overrides of each point. A step sweep sets each of the system's main step
    counts (its `sweep_steps`) to every value, under `sampler` if one is given, else under DDIM
    and DDPM."""
    if param == "steps":
        return [{"sampler": s, **{name: v for name in options_class.sweep_steps}} for s in ([sampler] if sampler else ["ddim", "ddpm"]) for v in values]
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
    real = real_images("shapes", texts, samples, seed, images.shape[1])  # fresh scenes of the same prompts: fidelity
    return {"overall": summary["overall"], "held_out": summary["held_out"], "clip_score": clip_score(judge.embed_images(images), text[ids]),
            "fd_pixel16": frechet_distance(pixel_features16(images), pixel_features16(real))}


def run_sweep(pipe, param: str, values: list[Any], *, benchmark: str, samples: int = 2, seed: int = 0, limit: int | None = None,
              batch_size: int = 32, out_dir=None, **options) -> dict[str, Any]:
    if benchmark not in BENCHMARKS:
        raise InputError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    rows = []
    points = sweep_points(param, values, type(pipe.defaults), options.get("sampler"))
    for point in points:
        pipe.defaults.updated(**{**options, **point})  # an option this pipeline lacks fails before any work
    for point in points:
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
                ax.plot([next(r[k] for k in r if k.endswith("_steps")) for r in part], [r[y] for r in part], "o-", label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("steps")
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


__all__ = ["parse_values", "sweep_points", "run_sweep", "plot_sweep", "guess_benchmark"]
