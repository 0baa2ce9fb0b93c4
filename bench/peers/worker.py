"""One system in its own process, driven by run.py over JSON lines.

    python bench/peers/worker.py --system imagen-pytorch --size full --threads 1

Runs under whichever interpreter run.py chooses: the project's for t2i, bench/peers/.venv's for
a peer (so the peers are never importable from the project's environment). Reads one JSON
request per line on stdin and answers one JSON line on the original stdout; everything the
libraries print goes to stderr (run.py keeps it in a log), so a stray print cannot break the
protocol. Requests: {"op": "build"}, {"op": "train_speed", "batch", "steps"},
{"op": "sample_speed", "n", "steps", "guidance"}, {"op": "flops", "batch", "n", "guidance"},
{"op": "rss"}, {"op": "quality", ...run_quality's arguments...}, {"op": "quit"}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--system", required=True)
    p.add_argument("--size", default="full")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints (tqdm, warnings, print_once) go to the log, not the protocol
    sys.stdout = sys.stderr

    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    import speed

    state: dict = {"import_s": time.perf_counter() - t0}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if req["op"] == "quit":
                proto.write(json.dumps({"ok": True}) + "\n")
                return 0
            out = handle(req, args, state, torch, speed)
            proto.write(json.dumps({"ok": True, **out}) + "\n")
        except Exception as e:  # reported to run.py, which marks the system unavailable
            traceback.print_exc()
            msg = str(e).strip().splitlines()
            proto.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {msg[0] if msg else ''}"[:400]}) + "\n")
    return 0


def handle(req: dict, args, state: dict, torch, speed) -> dict:
    import systems

    op = req["op"]
    if op == "build":
        rss_before = speed.peak_rss_mb()
        t0 = time.perf_counter()
        state.pop("opt", None), state.pop("sample_warm", None)
        system = state["system"] = systems.build(args.system, args.size, seed=req.get("seed", 0))
        lib = systems.PEER_OF.get(args.system)
        if lib:
            from importlib.metadata import version

            lib_version = version(lib)
        else:
            import t2i

            lib_version = t2i.__version__
        return {"params": system.params, "module_params": sum(p.numel() for p in system.module.parameters()),
                "config": system.config, "notes": system.notes, "kind": system.kind, "library": lib or "t2i",
                "version": lib_version, "torch": torch.__version__, "threads": torch.get_num_threads(),
                "import_s": state["import_s"], "build_s": time.perf_counter() - t0, "rss_after_import_mb": rss_before,
                "python": sys.executable}
    system = state["system"]
    if op == "train_speed":
        batch = _batch(system, args, req["batch"])
        if "opt" not in state:
            state["opt"] = system.optimizer()
            speed.train_step(system, state["opt"], batch)  # warm-up: allocator, oneDNN kernels
        return speed.train_rate(system, state["opt"], batch, req["steps"])
    if op == "sample_speed":
        cond = speed.condition(_batch(system, args, req["n"]), req["n"])
        if not state.get("sample_warm"):
            speed.sample_time(system, cond, 2, req["guidance"])
            state["sample_warm"] = True
        return speed.sample_time(system, cond, req["steps"], req["guidance"])
    if op == "flops":
        batch = _batch(system, args, req["batch"])
        return speed.flops(system, batch, speed.condition(_batch(system, args, req["n"]), req["n"]), req["guidance"])
    if op == "rss":
        peak = speed.peak_rss_mb()
        if req.get("reset"):
            speed.reset_peak_rss()
        return {"peak_rss_mb": peak}
    if op == "quality":
        import quality

        kw = {k: v for k, v in req.items() if k != "op"}
        return quality.run_quality(system, Path(kw.pop("data_path")), **kw)
    raise ValueError(f"unknown op {op!r}")


def _batch(system, args, b: int) -> dict:
    import speed
    import systems

    if system.kind == "prior":
        e, d = systems.prior_dims(args.system, args.size)
        return speed.prior_batch(b, e, d)
    return speed.decoder_batch(b)


if __name__ == "__main__":
    sys.exit(main())
