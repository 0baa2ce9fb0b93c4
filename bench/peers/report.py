"""Tables from a merged results dict (run.py's results.json), and RESULTS.md."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

TASKS = ("single_object", "two_objects", "counting", "colors", "position", "attribute_binding")


def _spread(s: dict | None, fmt: str) -> str:
    if not s:
        return "—"
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def _ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def speed_table(results: dict, kind: str) -> str:
    steps = results["settings"]["sample_steps_speed"]
    header = ["system", "params", "train img/s", "vs ours"]
    for s in steps:
        header += [f"s/sample @{s} steps", "vs ours"]
    header += ["peak RSS MB (torch alone)", "train GFLOP/s (% peak)", f"sample GFLOP/s @{steps[-1]} (% peak)"]
    rows = []
    for name, r in results["systems"].items():
        if r.get("kind") != kind:
            continue
        if "speed" not in r:
            rows.append([name, f"{r['info']['params']:,}" if "info" in r else "—", f"unavailable: {r.get('unavailable', 'not run')}"] + [""] * (len(header) - 3))
            continue
        sp = r["speed"]
        row = [f"{name} {r['info']['version']}", f"{r['info']['params']:,}", _spread(sp["train_images_per_s"], ".1f"), _ratio(sp.get("train_ratio"))]
        for s in steps:
            k = str(s)
            row += [_spread(sp["s_per_sample"].get(k), ".3f"), _ratio(sp.get("sample_ratio", {}).get(k))]
        row += [f"{sp['peak_rss_mb']:.0f} ({r['info']['rss_after_import_mb']:.0f})", f"{sp['train_gflops']:.1f} ({100 * sp['train_frac_peak']:.0f}%)",
                f"{sp['sample_gflops'][str(steps[-1])]:.1f} ({100 * sp['sample_frac_peak'][str(steps[-1])]:.0f}%)"]
        rows.append(row)
    return _table(header, rows)


def quality_table(results: dict) -> str:
    header = ["system", "train steps", "images seen", "CPU s", "wall s", *TASKS, "overall", "held-out"]
    rows = []
    for name, r in results["systems"].items():
        if r.get("kind") != "decoder":
            continue
        q = r.get("quality")
        if not q:
            if "quality_error" in r or "unavailable" in r:
                rows.append([name, f"unavailable: {r.get('quality_error') or r.get('unavailable')}"] + [""] * (len(header) - 2))
            continue
        t, s = q["train"], q["summary"]
        rows.append([name, str(t["steps"]), str(t["images_seen"]), f"{t['cpu_s']:.0f}", f"{t['wall_s']:.0f}",
                     *[f"{s.get(k, float('nan')):.3f}" for k in TASKS], f"**{s['overall']:.3f}**", f"{s['held_out']:.3f}"])
    return _table(header, rows)


def emoji_table(results: dict) -> str:
    rows = []
    for name, r in results["systems"].items():
        q = r.get("quality_emoji")
        if q:
            t = q["train"]
            rows.append([name, str(t["steps"]), str(t["images_seen"]), f"{t['cpu_s']:.0f}", f"{t['wall_s']:.0f}", f"**{q['summary']['fidelity@5']:.3f}**"])
    return _table(["system", "train steps", "images seen", "CPU s", "wall s", "fidelity@5"], rows) if rows else ""


def machine_line(results: dict) -> str:
    m = results["machine"]
    return (f"{m['cpu_count']} cores ({m['cpu']}), torch {m['torch']}, {m['threads']} thread(s) per system, fp32 2048² matmul "
            f"{m['peak_start_gflops']:.1f} GFLOP/s at the start and {m.get('peak_end_gflops', float('nan')):.1f} after the speed part "
            f"(fractions below are of their mean, {m['peak_gflops']:.1f})")


def tables(results: dict, machine: bool = True) -> str:
    out = [f"Machine: {machine_line(results)}\n"] if machine else []
    if any("speed" in r for r in results["systems"].values()):
        st = results["settings"]
        out += [f"\nDecoder UNets, 32×32 RGB: training at batch {st['train_batch']} (forward, loss, backward, clip, AdamW), sampling "
                f"{st['sample_n']} samples per call with guidance {st['guidance']}; median (min–max) of {st['repeats']} interleaved repeats; "
                "'vs ours' is the system's figure over ours (images/s: above 1 is faster than ours; s/sample: above 1 is slower).\n\n",
                speed_table(results, "decoder"),
                f"\nDiffusion priors at equal width and depth: training at batch {st['prior_batch']}, sampling {st['sample_n']} embeddings per call.\n\n",
                speed_table(results, "prior")]
    if any("quality" in r or "quality_error" in r for r in results["systems"].values()):
        st = results["settings"]
        out += [f"\nQuality at equal budget: shapes world 32×32 ({st['shapes_count']:,} training scenes, held-out pairs excluded), {st['budget_minutes']} min of {st['clock']} time per system, then "
                f"{st['eval_per_task']} canonical prompts per task (+ held-out), {st['eval_samples']} samples each, "
                f"{st['quality_steps']} steps, guidance {st['guidance']} ({2 * st['quality_steps']} network evaluations per image).\n\n",
                quality_table(results)]
    if any("quality_emoji" in r for r in results["systems"].values()):
        st = results["settings"]
        out += [f"\nThe same on the emoji train split (held-out emoji excluded): one caption of each of {st['emoji_limit']} base emoji, "
                f"{st['eval_samples']} samples each; fidelity@5 as `t2i eval emoji` (a hit when the emoji, any skin tone, is among the "
                "5 nearest dataset images by pixel L2 at 16×16).\n\n", emoji_table(results)]
    return "".join(out)


def _commands(results: dict) -> list[tuple[str, float]]:
    return results.get("commands") or [(results["command"], results["total_wall_s"])]


def merge_results(parts: list[dict]) -> dict:
    """One report from runs made side by side (say `--only speed` and `--only quality` on one core each).

    Systems are merged key by key, later parts winning (a system measured in a later part loses an
    earlier part's quality error, e.g. one stopped there to run in a lane of its own); the machine line comes from the part that
    measured speed, since the peak fractions in the speed table are relative to its matmul figures."""
    merged = {"settings": {}, "workarounds": {}, "systems": {}, "commands": []}
    for part in parts:
        merged["settings"].update(part["settings"])
        merged["workarounds"].update(part["workarounds"])
        merged["commands"] += _commands(part)
        for name, r in part["systems"].items():
            into = merged["systems"].setdefault(name, {})
            if "quality" in r:  # measured in this part: an earlier part's failure or skip no longer stands
                into.pop("quality_error", None)
            into.update(r)
        if "machine" not in merged or any("speed" in r for r in part["systems"].values()):
            merged["machine"] = part["machine"]
    return merged


def write_results_md(results: dict, path: Path) -> Path:
    """RESULTS.md: machine, commands, both tables, sample grids, protocol, workarounds, gaps."""
    path = Path(path)
    st = results["settings"]
    grids = []
    for key, label in (("quality", "shapes"), ("quality_emoji", "emoji")):
        for name, r in results["systems"].items():
            sheet = (r.get(key) or {}).get("sheet")
            if sheet:
                # RESULTS.md links only to files beside it: sheets from run folders elsewhere are copied in
                p, grid_dir = Path(sheet).resolve(), path.parent.resolve() / "grids"
                if p.parent != grid_dir and p.is_file():
                    grid_dir.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, grid_dir / p.name)
                rel = Path("grids") / p.name
                grids.append(f"**{name}**, {label}\n\n![{name} {label} samples]({rel.as_posix()})\n")
    notes = [f"- **{n}** ({r['info']['params']:,} parameters): {r['info']['notes']}<br>`{json.dumps(r['info']['config'])}`"
             for n, r in results["systems"].items() if "info" in r]
    gaps = [f"- **{n}**: {r.get('unavailable') or r.get('quality_error')}" for n, r in results["systems"].items()
            if r.get("unavailable") or r.get("quality_error")]
    text = [
        "# t2i beside its peers: speed at equal size, quality at equal budget\n\n",
        f"{'**Smoke run** (tiny models, seconds of training): the figures only show the harness works.' if st['smoke'] else ''}\n\n",
        f"Machine: {machine_line(results)}.\n\n",
        "Commands (from the repository root, in the project's environment; `nice -n 19` optional):\n\n```sh\n",
        "python bench/peers/setup_env.py                    # once: bench/peers/.venv with the peers\n",
        *[f"{cmd:<50} # {wall / 60:.0f} min\n" for cmd, wall in _commands(results)],
        *(["python bench/peers/run.py --smoke                  # the harness end to end in a few minutes\n"] if not st["smoke"] else []),
        "```\n\n",
        f"{results['note']}\n\n" if results.get("note") else "",
        tables(results, machine=False),
        "\n## Samples\n\nSame prompts, seeds and steps for every system. Shapes: the first sample of the first two prompts of each "
        "task and of the held-out prompts; emoji: the first sample of the first 16 captions.\n\n",
        "\n".join(grids) or "(no quality run)\n",
        "\n## What each system is and receives\n\n", "\n".join(notes), "\n\n",
        "All decoders get the same frozen MiniLM (all-MiniLM-L6-v2) token states of the captions (at most 32 tokens, zero at padding) "
        "and, where the architecture has a vector slot, the pooled MiniLM sentence embedding. No system is given a CLIP or prior "
        "trained outside the budget. dalle2-pytorch's ready CLIPs (OpenAI, OpenCLIP) come from the network, which is not reachable "
        "here; it could train an x-clip CLIP from scratch as t2i trains its own, but one budget split over CLIP, prior and decoder "
        "would make the result hinge on the split. So both unCLIP decoders (ours and dalle2-pytorch's) take the pooled MiniLM "
        "embedding in their image-embedding slot, at training and sampling alike, and the priors are compared for speed only. Same AdamW, learning rate, warm-up, clipping and batch stream for all; "
        "each library's "
        "own objective, schedule, guidance dropout and sampler.\n\n",
        "## Workarounds in the peers' environment\n\n",
        "\n".join(f"- `{k}`: {v}" for k, v in results["workarounds"].items()), "\n\n",
    ]
    if gaps:
        text += ["## Not measured\n\n", "\n".join(gaps), "\n"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(text))
    return path


if __name__ == "__main__":  # python bench/peers/report.py RESULTS.md A/results.json [B/results.json ...] [--note TEXT]
    import argparse

    ap = argparse.ArgumentParser(description="RESULTS.md from one run's results.json, or from runs made side by side")
    ap.add_argument("results_md", type=Path)
    ap.add_argument("parts", nargs="+", type=Path, help="results.json files; later ones win per system")
    ap.add_argument("--note", help="a line under the commands, e.g. how the runs were split")
    args = ap.parse_args()
    parts = [json.loads(p.read_text()) for p in args.parts]
    res = parts[0] if len(parts) == 1 else merge_results(parts)
    if args.note:
        res["note"] = args.note
    print(write_results_md(res, args.results_md))
