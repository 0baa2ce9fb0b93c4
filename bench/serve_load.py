"""Load on `t2i serve`: concurrent clients against one model, every response accounted for.

Starts the real server in this process on a free loopback port (as tests/test_serve.py does),
then `--clients` threads send `--requests` generation requests in all, through the official
`openai` client, and reports what came back (images, 429s, other errors), the p50 and p95
latency per request and images/s, for each `--max-batch` (1: batching off), alternated over
`--rounds` in one process so that the machine's drift hits each alike. Not a timed test: run it
by hand, on an otherwise idle machine.

    python bench/serve_load.py --model shapes --clients 10 --requests 50 --steps 10 --max-batch 1 8 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time

import openai
import uvicorn

import t2i
from t2i.serve.app import Served, create_app


def run_load(pipe, args: argparse.Namespace, max_batch: int) -> dict:
    """One server with this max_batch, one load run against it: what came back and how fast."""
    served = Served({args.model: pipe}, max_waiting=args.max_queue, timeout=3600, max_batch=max_batch)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    extra = {type(pipe.defaults).sweep_steps[-1]: args.steps} if args.steps else {}
    todo = list(range(args.requests))
    lock = threading.Lock()
    latencies, outcomes = [], {"ok": 0, "images": 0, "429": 0, "other": 0}

    def client() -> None:
        api = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="not-needed", max_retries=0, timeout=3600)
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            start = time.perf_counter()
            try:
                result = api.images.generate(model=args.model, prompt=f"a red circle number {i}", n=args.n, extra_body={"seed": i, **extra})
                outcome, images = "ok", len(result.data)
            except openai.RateLimitError:
                outcome, images = "429", 0
            except openai.APIError:
                outcome, images = "other", 0
            with lock:
                latencies.append(time.perf_counter() - start)
                outcomes[outcome] += 1
                outcomes["images"] += images

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    server.should_exit = True
    thread.join(30)
    served.close()
    quantiles = statistics.quantiles(latencies, n=20)
    return {"max_batch": max_batch, "accounted_for": sum(outcomes[k] for k in ("ok", "429", "other")), **outcomes,
            "batches": served.workers[args.model].batches, "p50_s": round(statistics.median(latencies), 3), "p95_s": round(quantiles[18], 3),
            "images_per_s": round(outcomes["images"] / wall, 3), "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--n", type=int, default=1, help="images per request")
    parser.add_argument("--steps", type=int, help="the model's main step count (default: its own)")
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 8], help="the server's batching settings to compare (1: off)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each setting, alternated")
    args = parser.parse_args()

    pipe = t2i.load_pipeline(args.model)
    runs = [run_load(pipe, args, max_batch) for _ in range(args.rounds) for max_batch in args.max_batch]
    print(json.dumps({"model": args.model, "clients": args.clients, "requests": args.requests, "n": args.n, "steps": args.steps, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
