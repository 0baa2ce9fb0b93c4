"""Latency of sampling settings side by side: network evaluations per image, warm seconds per
64x64 image and cold-start seconds of `t2i generate`, for each `--setting`, alternated over
`--repeats` in one process so the machine's drift hits each alike.

    python bench/sampler_latency.py --model shapes --threads 2 --repeats 3 \
        --setting "before:prior_steps=25,decoder_steps=25,sampler=ddim" --setting "after:"

An empty setting is the model's own defaults (its pipeline.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

PROMPT = "a red circle to the left of a blue square"


def parse_setting(text: str, options_class: type) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, {key: typed value})."""
    name, _, body = text.partition(":")
    kinds = {f.name: f.metadata.get("kind", str) for f in fields(options_class)}
    out = {}
    for pair in filter(None, body.split(",")):
        key, _, value = pair.partition("=")
        out[key] = value if kinds[key] is str else kinds[key](value)
    return name, out


def evaluations(o) -> int:
    """Network evaluations per final image under options `o` (unCLIP or Imagen)."""
    guided = lambda scale: 1 if scale == 1.0 else 2  # noqa: E731
    if hasattr(o, "prior_steps"):
        decoder = 3 if o.decoder_text_guidance is not None else guided(o.decoder_guidance)
        return o.prior_steps * guided(o.prior_guidance) * o.prior_candidates + o.decoder_steps * decoder * o.decoder_candidates + o.upsampler_steps
    return o.base_steps * guided(o.base_guidance) + o.sr_steps * guided(o.sr_guidance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--setting", action="append", required=True, help="NAME:key=value,... (sampling options; empty: the defaults)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import t2i

    torch.set_num_threads(args.threads)
    pipe = t2i.load_pipeline(args.model)
    settings = [parse_setting(s, type(pipe.defaults)) for s in args.setting]
    warm = {name: [] for name, _ in settings}
    cold = {name: [] for name, _ in settings}
    pipe([PROMPT], seed=0)  # warm-up
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, options in settings:
                start = time.perf_counter()
                pipe([PROMPT], seed=r, **options)
                warm[name].append(time.perf_counter() - start)
                flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
                cmd = [sys.executable, "-m", "t2i", "--threads", str(args.threads), "generate", PROMPT, "--model", args.model, "--seed", str(r),
                       *flags, "-o", str(Path(tmp) / f"{name}-{r}.png")]
                start = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, capture_output=True)
                cold[name].append(time.perf_counter() - start)
    rows = [{"setting": name, "options": options, "evaluations_per_image": evaluations(pipe.defaults.updated(**options)),
             "warm_s": round(statistics.median(warm[name]), 3), "warm_range": [round(min(warm[name]), 3), round(max(warm[name]), 3)],
             "cold_s": round(statistics.median(cold[name]), 3), "cold_range": [round(min(cold[name]), 3), round(max(cold[name]), 3)]}
            for name, options in settings]
    print(json.dumps({"model": args.model, "threads": args.threads, "repeats": args.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
