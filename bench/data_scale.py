"""A dataset larger than memory should be: a folder of `--images` rendered scenes (PNG + caption),
trained from as a folder (decoded whole into memory at start) and as a prepared dataset
(`t2i data prepare`: decoded once, memory-mapped). Each measured command runs in a process of
its own, its memory sampled every 0.2 s (resident, and the anonymous part: what the kernel cannot
drop, unlike the mapped file's pages). Training images/s come from the runs' log.jsonl, which
excludes loading. Captions are not augmented here (the variants would multiply the captions to
encode, which is not what this measures). Not a timed test: run it by hand, on an otherwise idle machine.

    python bench/data_scale.py --images 100000 --size 32 --steps 200 --work /tmp/t2i-scale
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from PIL import Image


def make_source(folder: Path, count: int, size: int) -> None:
    """`count` shapes-world scenes as PNG files with same-named .txt captions (two per scene)."""
    from t2i.data.shapes import make_training_set

    folder.mkdir(parents=True, exist_ok=True)
    done = len(list(folder.glob("*.txt")))
    chunk = 2000
    for start in range(done - done % chunk, count, chunk):
        scenes = make_training_set(min(chunk, count - start), size, seed=start)
        for i, (pixels, captions) in enumerate(zip(scenes.images, scenes.captions)):
            name = folder / f"{start + i:07d}"
            Image.fromarray(pixels).save(name.with_suffix(".png"))
            name.with_suffix(".txt").write_text("\n".join(captions) + "\n")
        print(f"source: {start + len(scenes)} of {count} images", file=sys.stderr, flush=True)


def measured(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds and peak memory (MiB) of a command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_rss = peak_anon = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            infos = [p.memory_info() for p in tree]
        except psutil.Error:
            infos = []
        rss = sum(m.rss for m in infos)
        peak_rss, peak_anon = max(peak_rss, rss), max(peak_anon, rss - sum(m.shared for m in infos))
        time.sleep(0.2)
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {err[-2000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mib": round(peak_rss / 2**20), "peak_anon_mib": round(peak_anon / 2**20)}


def train_rate(run: Path) -> float:
    """Mean training images/s over the logged intervals after the first (warm-up)."""
    rates = [json.loads(line)["images_per_s"] for line in (run / "log.jsonl").read_text().splitlines() if "images_per_s" in line]
    return round(sum(rates[1:]) / max(1, len(rates) - 1), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=32, help="side of the source PNGs and of the training images")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each run (tiny imagen-base, batch 64)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes of `t2i data prepare`")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/t2i-scale"))
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    source, prepared = args.work / "source", args.work / "prepared"
    make_source(source, args.images, args.size)
    t2i = [sys.executable, "-m", "t2i", "--threads", str(args.threads)]
    train = ["train", "imagen-base", "--config", "tiny", "--steps", str(args.steps), "--no-progress", "--set", "train.batch_size=64", "--set", "options.caption_augment=0",
             "--set", "train.log_every=20", "--set", f"train.sample_every={10 * args.steps}", "--set", f"train.save_every={10 * args.steps}"]
    results = {"images": args.images, "size": args.size, "steps": args.steps, "threads": args.threads}
    shutil.rmtree(prepared, ignore_errors=True)
    results["prepare"] = measured([*t2i, "data", "prepare", str(source), "-o", str(prepared), "--size", str(args.size),
                                   "--workers", str(args.workers), "--no-progress"], env)
    # the captions' encodings are cached on disk by whichever run comes first: encode them once, unmeasured
    warm = args.work / "run-warm"
    shutil.rmtree(warm, ignore_errors=True)
    print(json.dumps(results), file=sys.stderr, flush=True)
    measured([*t2i, *train[:4], "--steps", "1", "--no-progress", "--set", "options.caption_augment=0", "--data", str(prepared), "--out", str(warm)], env)
    for name, data in (("folder", source), ("prepared", prepared)):
        run = args.work / f"run-{name}"
        shutil.rmtree(run, ignore_errors=True)
        results[f"train_from_{name}"] = {**measured([*t2i, *train, "--data", str(data), "--out", str(run)], env), "images_per_s": train_rate(run)}
        print(json.dumps(results), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
