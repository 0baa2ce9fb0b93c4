"""bench/peers: our own side of the peers benchmark, end to end on a tiny model (no peers venv needed).

The full harness (`python bench/peers/run.py --smoke`) also runs the peers in their own
environment; this test runs the same code for t2i alone: a worker process over the JSON-lines
protocol for the interleaved speed part, the quality protocol in-process on a 16-scene shapes
set, and the RESULTS.md writer.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

PEERS = Path(__file__).resolve().parent.parent / "bench" / "peers"
sys.path.insert(0, str(PEERS))

TASKS = ("single_object", "two_objects", "counting", "colors", "position", "attribute_binding")


def test_our_side_of_the_peers_harness(tmp_path):
    import quality
    import report
    import run
    import systems

    # the system: exact size, a real training step, guided samples in range
    system = systems.build("t2i", "tiny")
    assert system.params == sum(p.numel() for p in system.module.parameters()) == 374_844

    # speed: one worker under the project's interpreter, interleaved repeats, FLOPs, memory
    st = {"smoke": True, "size": "tiny", "threads": 1, "repeats": 3, "guidance": 3.0, "sample_steps_speed": [20, 50],
          "train_batch": 4, "prior_batch": 8, "train_steps_per_repeat": 1, "sample_n": 1, "budget_minutes": 0.02, "clock": "cpu",
          "eval_per_task": 1, "eval_samples": 1, "quality_steps": 2, "emoji_limit": 8, "shapes_count": 16}
    res = {"command": "python bench/peers/run.py --smoke", "settings": st, "workarounds": {"none": "test"},
           "systems": {"t2i": {"kind": "decoder"}},
           "machine": {"cpu_count": 2, "cpu": "test", "torch": torch.__version__, "threads": 1, "peak_start_gflops": 50.0, "peak_end_gflops": 50.0}}
    workers = run.start_workers(["t2i"], st, tmp_path / "out", res)
    try:
        run.run_speed(workers, st, res)
    finally:
        for w in workers.values():
            w.close()
    run.finish_speed(res)
    info, sp = res["systems"]["t2i"]["info"], res["systems"]["t2i"]["speed"]
    assert info["params"] == 374_844 and info["library"] == "t2i" and info["torch"] == torch.__version__
    assert sp["train_images_per_s"]["n"] == 3 and sp["train_images_per_s"]["median"] > 0
    assert 0 < sp["s_per_sample"]["20"]["median"] < sp["s_per_sample"]["50"]["max"] * 2
    assert sp["peak_rss_mb"] > 100 and 0 < sp["train_frac_peak"] and sp["train_ratio"] == 1.0
    assert res["systems"]["t2i"]["flops"]["train_flop_per_image"] > res["systems"]["t2i"]["flops"]["sample_flop_per_image_step"] > 0

    # quality: the shared batch stream, a budgeted run, the canonical prompts, the shapes scorer
    data = quality.prepare_data(tmp_path / "shapes.npz", "shapes", count=16)
    batches = quality.Batches(data, batch=4)
    a, b = batches(3), batches(3)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["tokens"], b["tokens"])  # batch k is a function of k
    assert a["x"].shape == (4, 3, 32, 32) and a["tokens"].shape[-1] == 384 and a["mask"].dtype == torch.bool
    q = quality.run_quality(system, data, budget_s=60, batch=4, per_task=1, samples=1, steps=2, guidance=3.0,
                            out_dir=tmp_path / "images", sheet_dir=tmp_path / "grids", max_steps=3)
    assert q["train"]["steps"] == 3 and q["train"]["images_seen"] == 12 and q["train"]["cpu_s"] > 0
    assert q["eval"]["prompts"] == 8 and q["eval"]["network_evals_per_image"] == 4
    assert set(TASKS) | {"overall", "held_out"} <= set(q["summary"])
    assert all(0.0 <= q["summary"][k] <= 1.0 for k in (*TASKS, "overall", "held_out"))
    assert sum(q["counts"].values()) == 8
    images = np.load(tmp_path / "images" / "t2i-shapes-images.npy")
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
    assert Path(q["sheet"]).is_file()

    # the report: both tables, the grid linked relative to RESULTS.md
    res["systems"]["t2i"]["quality"] = q
    res["total_wall_s"] = 1.0
    md = report.write_results_md(res, tmp_path / "RESULTS.md").read_text()
    assert "| t2i 0.1.0 | 374,844 |" in md and "1.00×" in md
    assert "![t2i shapes samples](grids/t2i-shapes.png)" in md
    assert "| t2i | 3 | 12 |" in md

    # two lanes run side by side (--only speed, --only quality) make one report
    speed_part = {**res, "command": "run.py --only speed", "total_wall_s": 60.0,
                  "systems": {"t2i": {k: v for k, v in res["systems"]["t2i"].items() if k != "quality"}}}
    quality_part = {**res, "command": "run.py --only quality", "total_wall_s": 120.0,
                    "machine": {**res["machine"], "peak_start_gflops": 1.0},
                    "systems": {"t2i": {k: v for k, v in res["systems"]["t2i"].items() if k != "speed"}}}
    failed_part = {**speed_part, "systems": {"t2i": {"kind": "decoder", "quality_error": "t2i: worker exited (-15)"}}}
    merged = report.merge_results([speed_part, failed_part, quality_part])
    assert merged["systems"]["t2i"]["speed"] == sp and merged["systems"]["t2i"]["quality"] == q
    assert merged["machine"]["peak_start_gflops"] == 50.0  # the speed lane's matmul, which its fractions use
    md = report.write_results_md(merged, tmp_path / "RESULTS-merged.md").read_text()
    assert "run.py --only speed" in md and "# 2 min" in md and "| t2i | 3 | 12 |" in md and "1.00×" in md
    assert "quality_error" not in merged["systems"]["t2i"] and "Not measured" not in md
    # a report written elsewhere takes copies of the sample grids, so its links resolve
    elsewhere = report.write_results_md(merged, tmp_path / "report" / "RESULTS.md")
    assert "](grids/t2i-shapes.png)" in elsewhere.read_text() and (tmp_path / "report" / "grids" / "t2i-shapes.png").is_file()


def test_a_worker_that_does_not_answer_in_time_is_stopped(tmp_path):
    import pytest
    from client import Worker, WorkerError

    w = Worker("t2i", python=sys.executable, size="tiny", threads=1, log=tmp_path / "t2i.log")
    try:
        assert w.call("build")["params"] == 374_844
        with pytest.raises(WorkerError, match="no answer in 0 s; worker stopped"):
            w.call("train_speed", timeout_s=0.01, batch=4, steps=50)
        assert w.proc.poll() is not None  # killed, not left running
        with pytest.raises(WorkerError, match="exited"):
            w.call("rss")
    finally:
        w.close()


def test_the_imagen_system_is_the_imagen_base_at_the_harness_size():
    import systems

    torch.set_num_threads(1)
    system = systems.build("t2i-imagen", "tiny")
    assert system.params == 338_492 and system.config["diffusion"]["objective"] == "v"  # the imagen-shapes preset's
    g = torch.Generator().manual_seed(0)
    batch = {"x": torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, "tokens": torch.randn(4, 6, 384, generator=g),
             "mask": torch.ones(4, 6, dtype=torch.bool), "pooled": torch.randn(4, 384, generator=g)}
    before = [p.detach().clone() for p in system.trainable()]
    opt = system.optimizer(lr=1e-3)
    for _ in range(4):  # the text path's output layers start at zero: a few steps open it
        opt.zero_grad()
        loss = system.loss(batch)
        loss.backward()
        opt.step()
    assert 0 < float(loss) < 2 and any(not torch.equal(a, b) for a, b in zip(before, system.trainable()))
    system.set_training(False)
    x = system.sample(batch, 3, 3.0, seed=1)
    assert x.shape == (4, 3, 32, 32) and float(x.abs().max()) <= 1.0
    assert torch.equal(x, system.sample(batch, 3, 3.0, seed=1))  # seeded
    other = {**batch, "tokens": -batch["tokens"]}
    assert not torch.allclose(x, system.sample(other, 3, 3.0, seed=1))  # reads the tokens
