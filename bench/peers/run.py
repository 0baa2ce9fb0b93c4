"""t2i beside dalle2-pytorch, imagen-pytorch and diffusers: speed at equal size, quality at equal budget.

    python bench/peers/setup_env.py                # once: the peers' own venv, bench/peers/.venv
    python bench/peers/run.py --budget-minutes 20  # the full run: bench/peers/RESULTS.md
    python bench/peers/run.py --smoke              # tiny configs end to end (same as --budget-minutes 0.2)

Run it with the project's interpreter: our side runs there, each peer in a worker process under
bench/peers/.venv/bin/python. Each system is one worker (worker.py); speed repeats are
interleaved across systems (a shared machine drifts), quality runs one system at a time.
Everything machine-readable lands in --out (results.json, per-system logs and images);
RESULTS.md and the sample grids go to --results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT / "bench"))

SPEED_STEPS = (20, 50)


def settings(args) -> dict:
    smoke = args.smoke or args.budget_minutes < 1
    budget = 0.2 if args.smoke and args.budget_minutes == 20 else args.budget_minutes
    s = {"smoke": smoke, "size": "tiny" if smoke else "full", "budget_minutes": budget, "clock": args.clock,
         "threads": args.threads, "repeats": max(3, args.repeats), "guidance": 3.0, "sample_steps_speed": list(SPEED_STEPS),
         # speed: batch 32 for decoders (the shapes decoder preset), 128 for priors (the prior preset)
         "train_batch": 8 if smoke else 32, "prior_batch": 16 if smoke else 128, "train_steps_per_repeat": 1 if smoke else 3,
         "sample_n": 2 if smoke else 8,
         # quality
         "quality_batch": 8 if smoke else 32, "shapes_count": 2000 if smoke else 20000,
         "eval_per_task": 1 if smoke else args.eval_per_task, "eval_samples": 1 if smoke else args.eval_samples,
         "emoji_limit": 8 if smoke else args.emoji_limit, "quality_steps": 10 if smoke else args.quality_steps}
    return s


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def machine(threads: int) -> dict:
    import torch
    from unclip_speed import matmul_peak  # bench/unclip_speed.py: best of 5 fp32 2048³ matmuls

    torch.set_num_threads(threads)
    return {"cpu_count": os.cpu_count(), "cpu": _cpu_name(), "torch": torch.__version__, "threads": threads,
            "python": platform.python_version(), "peak_start_gflops": matmul_peak()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def start_workers(names: list[str], st: dict, out: Path, res: dict) -> dict:
    from client import Worker, WorkerError, python_for

    workers = {}
    for name in names:
        python, why = python_for(name)
        if python is None:
            res["systems"][name]["unavailable"] = why
            continue
        workers[name] = Worker(name, python=python, size=st["size"], threads=st["threads"], log=out / "logs" / f"{name}.log")
    for name, w in list(workers.items()):  # builds after all have started: imports overlap
        try:
            res["systems"][name]["info"] = w.call("build")
            print(f"  {name:<22} {res['systems'][name]['info']['params']:>10,} parameters  ({res['systems'][name]['info']['library']} "
                  f"{res['systems'][name]['info']['version']}, torch {res['systems'][name]['info']['torch']})", flush=True)
        except WorkerError as e:
            res["systems"][name]["unavailable"] = str(e)
            print(f"  {name:<22} unavailable: {e}", flush=True)
            w.close()
            del workers[name]
    return workers


def run_speed(workers: dict, st: dict, res: dict) -> None:
    from client import WorkerError

    raw = {n: {"train": [], **{str(s): [] for s in SPEED_STEPS}} for n in workers}
    live = dict(workers)

    def call(name, op, **kw):
        try:
            return live[name].call(op, **kw)
        except WorkerError as e:
            res["systems"][name]["unavailable"] = f"speed: {e}"
            print(f"  {name}: {e}", flush=True)
            del live[name]

    for name in list(live):
        kind = res["systems"][name]["kind"]
        b = st["train_batch"] if kind == "decoder" else st["prior_batch"]
        f = call(name, "flops", batch=b, n=st["sample_n"], guidance=st["guidance"])
        if f:
            res["systems"][name]["flops"] = f
        if name in live:
            call(name, "rss", reset=True)
    for rep in range(st["repeats"]):
        names = list(live)
        order = names[rep % max(1, len(names)):] + names[: rep % max(1, len(names))]  # rotate who goes first
        for name in order:
            if name not in live:
                continue
            b = st["train_batch"] if res["systems"][name]["kind"] == "decoder" else st["prior_batch"]
            r = call(name, "train_speed", batch=b, steps=st["train_steps_per_repeat"])
            if r:
                raw[name]["train"].append(r["images_per_s"])
        for steps in SPEED_STEPS:
            for name in order:
                if name in live:
                    r = call(name, "sample_speed", n=st["sample_n"], steps=steps, guidance=st["guidance"])
                    if r:
                        raw[name][str(steps)].append(r["s_per_sample"])
        print(f"  speed repeat {rep + 1}/{st['repeats']} done", flush=True)
    for name in live:
        rss = call(name, "rss")
        r, f = raw[name], res["systems"][name]["flops"]
        ips = summary(r["train"])
        sp = {"train_images_per_s": ips, "s_per_sample": {k: summary(r[k]) for k in map(str, SPEED_STEPS)},
              "peak_rss_mb": rss["peak_rss_mb"] if rss else float("nan"), "raw": r}
        sp["train_gflops"] = ips["median"] * f["train_flop_per_image"] / 1e9
        sp["sample_gflops"] = {k: int(k) * f["sample_flop_per_image_step"] / sp["s_per_sample"][k]["median"] / 1e9 for k in sp["s_per_sample"]}
        res["systems"][name]["speed"] = sp


def finish_speed(res: dict) -> None:
    """Fractions of the matmul peak (mean of start and end) and ratios against ours."""
    m = res["machine"]
    peak = m["peak_gflops"] = (m["peak_start_gflops"] + m.get("peak_end_gflops", m["peak_start_gflops"])) / 2
    for r in res["systems"].values():
        sp = r.get("speed")
        if not sp:
            continue
        sp["train_frac_peak"] = sp["train_gflops"] / peak
        sp["sample_frac_peak"] = {k: v / peak for k, v in sp["sample_gflops"].items()}
        ours = res["systems"].get("t2i" if r["kind"] == "decoder" else "t2i-prior", {}).get("speed")
        if ours:
            sp["train_ratio"] = sp["train_images_per_s"]["median"] / ours["train_images_per_s"]["median"]
            sp["sample_ratio"] = {k: v["median"] / ours["s_per_sample"][k]["median"] for k, v in sp["s_per_sample"].items()}


def run_quality(workers: dict, st: dict, res: dict, out: Path, results_dir: Path, dataset: str) -> None:
    from client import WorkerError
    from quality import prepare_data

    key = "quality" if dataset == "shapes" else f"quality_{dataset}"
    cache = Path(os.environ.get("T2I_CACHE") or Path.home() / ".cache" / "t2i") / "bench-peers"
    t0 = time.perf_counter()
    count = st["shapes_count"]
    data = prepare_data(cache / (f"shapes-32-train-{count}-seed0.npz" if dataset == "shapes" else f"{dataset}-32-train.npz"), dataset, count)
    print(f"  {dataset} data ready ({time.perf_counter() - t0:.1f} s): {data}", flush=True)
    for name, w in workers.items():
        if res["systems"][name]["kind"] != "decoder" or res["systems"][name].get("quality_error"):
            continue
        t0 = time.perf_counter()
        try:
            if dataset != "shapes":
                w.call("build")  # a fresh model: the shapes run trained this one
            # the budget, plus sampling, which at 1 thread takes a slow peer up to ~1.5x its budget
            q = w.call("quality", timeout_s=60 * st["budget_minutes"] * 4 + 1800, data_path=str(data), dataset=dataset, budget_s=60 * st["budget_minutes"], clock=st["clock"],
                       batch=st["quality_batch"], per_task=st["eval_per_task"], limit=st["emoji_limit"], samples=st["eval_samples"],
                       steps=st["quality_steps"], guidance=st["guidance"], out_dir=str(out / "images"), sheet_dir=str(results_dir / "grids"))
        except WorkerError as e:
            res["systems"][name]["quality_error"] = str(e)
            print(f"  {name}: {dataset} quality failed: {e}", flush=True)
            continue
        q["phase_wall_s"] = time.perf_counter() - t0
        res["systems"][name][key] = q
        figures = ", ".join(f"{k} {v:.3f}" for k, v in q["summary"].items() if k in ("overall", "held_out", "fidelity@5"))
        print(f"  {name:<16} {dataset}: {q['train']['steps']:>6} steps, {q['train']['cpu_s']:.0f} CPU s; {figures} "
              f"({q['phase_wall_s']:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    import systems
    import workarounds
    from report import tables, write_results_md

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget-minutes", type=float, default=20.0, help="training budget per system in the quality part (default 20); below 1 means --smoke")
    p.add_argument("--smoke", action="store_true", help="tiny configs, a few seconds each: the whole harness in minutes")
    p.add_argument("--only", choices=("speed", "quality"), help="run one part only")
    p.add_argument("--systems", help=f"comma-separated subset of {','.join(systems.DECODERS + systems.PRIORS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads per system (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved speed repeats, at least 3")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="what the budget counts: the worker's CPU time (default) or wall time")
    p.add_argument("--eval-per-task", type=int, default=25, help="canonical prompts per task (default 25, as README's eval)")
    p.add_argument("--eval-samples", type=int, default=2, help="images per prompt (default 2)")
    p.add_argument("--emoji", action="store_true", help="repeat the quality part on the emoji data (fidelity@5); doubles its time")
    p.add_argument("--emoji-limit", type=int, default=200, help="base emoji captions in the emoji evaluation (default 200)")
    p.add_argument("--quality-steps", type=int, default=25, help="sampling steps in the quality part (default 25)")
    p.add_argument("--out", type=Path, help="results.json, logs, images (default bench/peers/out[-smoke])")
    p.add_argument("--results", type=Path, help="RESULTS.md (default bench/peers/RESULTS.md; with --smoke, OUT/RESULTS.md)")
    args = p.parse_args(argv)
    st = settings(args)
    out = args.out or HERE / ("out-smoke" if st["smoke"] else "out")
    results_md = args.results or (out / "RESULTS.md" if st["smoke"] else HERE / "RESULTS.md")
    names = list(systems.DECODERS + systems.PRIORS)
    if args.systems:
        names = [n.strip() for n in args.systems.split(",") if n.strip()]
        unknown = set(names) - set(systems.DECODERS + systems.PRIORS)
        if unknown:
            p.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.only == "quality":
        names = [n for n in names if n in systems.DECODERS]

    t_start = time.perf_counter()
    command = "python bench/peers/run.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    res = {"command": command.strip(), "settings": st, "workarounds": workarounds.WORKAROUNDS,
           "systems": {n: {"kind": "prior" if n in systems.PRIORS else "decoder"} for n in names}}
    res["machine"] = machine(st["threads"])
    print(f"machine: {res['machine']['cpu_count']} cores, torch {res['machine']['torch']}, {st['threads']} thread(s), "
          f"matmul {res['machine']['peak_start_gflops']:.1f} GFLOP/s; {'smoke' if st['smoke'] else 'full'} run -> {out}", flush=True)
    workers = start_workers(names, st, out, res)
    try:
        if args.only != "quality":
            print("speed:", flush=True)
            run_speed(workers, st, res)
        res["machine"]["peak_end_gflops"] = __import__("unclip_speed").matmul_peak()
        finish_speed(res)
        res["phases_s"] = {"start_and_speed": time.perf_counter() - t_start}
        for name in [n for n in workers if res["systems"][n]["kind"] == "prior"]:
            workers.pop(name).close()  # done: free their memory before the quality part
        for dataset in ["shapes"] + (["emoji"] if args.emoji else []):
            if args.only != "speed":
                print(f"quality ({dataset}):", flush=True)
                t0 = time.perf_counter()
                run_quality(workers, st, res, out, results_md.parent, dataset)
                res["phases_s"][f"quality_{dataset}"] = time.perf_counter() - t0
    finally:
        for w in workers.values():
            w.close()
    res["total_wall_s"] = time.perf_counter() - t_start
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    write_results_md(res, results_md)
    print("\n" + tables(res))
    print(f"total {res['total_wall_s']:.0f} s; results: {out / 'results.json'}; report: {results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
