"""The training cost of stages side by side: FLOPs and seconds per step, as ratios.

Comparing systems "at equal CPU time" needs the cost of a step of each stage they train. Run
logs give images/s, but this machine's speed drifts 2x within an hour, so figures logged at
different times do not compare. This script builds each stage exactly as `t2i train` does (its
preset, its real data, the components it reads), then measures in one process:

- FLOPs of one optimizer step (forward and backward, torch's FlopCounterMode): drift-free;
- seconds per step, the stages interleaved round by round so that drift falls on all alike.

    python bench/stage_cost.py --data shapes imagen-base@imagen-shapes clip@shapes \\
        prior@shapes:clip=runs/shapes-clip decoder@shapes:clip=runs/shapes-clip

A stage is STAGE@PRESET, then optionally :NEED=RUN,... for the trained components it reads.
Ratios are to the first stage given.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from t2i.train.build import make_trainer, read_preset


def parse_stage(text: str) -> tuple[str, str, dict[str, str]]:
    """'decoder@shapes:clip=RUN' -> ('decoder', 'shapes', {'clip': 'RUN'})."""
    head, _, needs = text.partition(":")
    stage, _, preset = head.partition("@")
    if not stage or not preset:
        raise SystemExit(f"stage_cost: '{text}' is not STAGE@PRESET[:NEED=RUN,...]")
    pairs = [n.split("=", 1) for n in needs.split(",") if n]
    return stage, preset, {k: v for k, v in pairs}


class StageStep:
    """One stage's trainer, stepped by Trainer.step_once: the step `t2i train` takes, without logging or saving."""

    def __init__(self, text: str, data: str, out_dir: Path) -> None:
        self.name = text.split(":")[0]
        stage, preset, needs = parse_stage(text)
        self.trainer = make_trainer(stage, read_preset(preset), data=data, out_dir=out_dir, needs=needs, progress=False)
        self.batch_size = self.trainer.config.batch_size

    def step(self) -> None:
        self.trainer.step_once()

    def flops(self) -> int:
        """FLOPs of one optimizer step: every micro-batch's forward and backward (the counter
        sees matmuls and convolutions; the optimizer's elementwise work is small and not counted)."""
        with FlopCounterMode(display=False) as counter:
            self.step()
        return counter.get_total_flops()


def timed(step: StageStep, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step.step()
    return (time.perf_counter() - t0) / steps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stages", nargs="+", help="STAGE@PRESET[:NEED=RUN,...]; ratios are to the first")
    p.add_argument("--data", default="shapes")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per stage per round (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the background runs)")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        steps = [StageStep(s, args.data, Path(tmp) / str(i)) for i, s in enumerate(args.stages)]
        flops = [s.flops() for s in steps]  # each stage's first step, which also warms it up
        seconds: list[list[float]] = [[] for _ in steps]
        for _ in range(args.rounds):
            for s, out in zip(steps, seconds):
                out.append(timed(s, args.steps))
    first_s, first_f = statistics.median(seconds[0]), flops[0]
    rows = []
    print(f"{'stage':<34}{'batch':>6}{'GFLOP/step':>12}{'s/step':>9}{'FLOP ratio':>12}{'time ratio':>12}")
    for s, f, secs in zip(steps, flops, seconds):
        med = statistics.median(secs)
        rows.append({"stage": s.name, "batch": s.batch_size, "gflop_per_step": f / 1e9, "step_s": med, "step_s_all": secs,
                     "flop_ratio": f / first_f, "time_ratio": med / first_s})
        print(f"{s.name:<34}{s.batch_size:>6}{f / 1e9:>12.2f}{med:>9.3f}{f / first_f:>12.3f}{med / first_s:>12.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "data": args.data, "stages": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
