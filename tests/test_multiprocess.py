"""Training on several processes (torchrun, gloo on the CPU) is the same run as one process that
accumulates their batches: each process draws the batch that one process would draw as its
micro-batch, gradients are averaged, one process writes the log, checkpoints and run.json."""
from __future__ import annotations

import json
import subprocess
import sys

import torch
from safetensors.torch import load_file
from tiny import env_for_subprocess

LAUNCHERS = {
    "torchrun": lambda n: [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "t2i"],
    # accelerate's own multi-process launcher (torchrun underneath); --multi_gpu names it, and it
    # runs on CPUs too (`--cpu` would launch a single process)
    "accelerate": lambda n: [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", f"--num_processes={n}", "--num_machines=1",
                             "--mixed_precision=no", "--dynamo_backend=no", "-m", "t2i"],
}


def _train(args: list[str], processes: int, env: dict, launcher: str = "torchrun") -> subprocess.CompletedProcess:
    launcher = LAUNCHERS[launcher](processes) if processes > 1 else [sys.executable, "-m", "t2i"]
    return subprocess.run([*launcher, "--threads", "1", "train", *args], capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_train_what_one_process_accumulating_their_batches_trains(tiny_run, tmp_path) -> None:
    env = {**env_for_subprocess(), "T2I_CACHE": str(tmp_path / "cache")}
    common = ["upsampler", "--data", str(tiny_run.data), "--config", "tiny", "--steps", "3", "--batch-size", "2", "--no-progress",
              "--set", "train.log_every=1", "--set", "train.save_every=3", "--set", "train.sample_every=100"]
    two = _train([*common, "--out", str(tmp_path / "two")], 2, env)
    assert two.returncode == 0, two.stderr[-2000:]
    one = _train([*common, "--set", "train.grad_accum=2", "--out", str(tmp_path / "one")], 1, env)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.stdout.count("upsampler: step 3") == 1  # one process reports
    for name in ("model.safetensors", "raw.safetensors"):
        a, b = (load_file(tmp_path / run / "checkpoints" / "step-00000003" / name) for run in ("two", "one"))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
    logs = [[r for r in map(json.loads, (tmp_path / run / "log.jsonl").read_text().splitlines()) if "loss" in r] for run in ("two", "one")]
    assert [r["step"] for r in logs[0]] == [1, 2, 3]  # one line per step, not one per process
    assert all(abs(a["loss"] - b["loss"]) < 1e-5 for a, b in zip(*logs))  # the loss averaged over processes
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "one" / "run.json").read_text())["world_size"] == 1


def test_accelerate_launch_with_accumulation_trains_what_one_process_accumulating_everything_trains(tiny_run, tmp_path) -> None:
    # 2 processes x 2 micro-batches (gradients averaged across processes on the last one only)
    # = 1 process x 4 micro-batches
    env = {**env_for_subprocess(), "T2I_CACHE": str(tmp_path / "cache")}
    common = ["upsampler", "--data", str(tiny_run.data), "--config", "tiny", "--steps", "2", "--batch-size", "2", "--no-progress",
              "--set", "train.log_every=1", "--set", "train.save_every=2", "--set", "train.sample_every=100"]
    two = _train([*common, "--set", "train.grad_accum=2", "--out", str(tmp_path / "two")], 2, env, launcher="accelerate")
    assert two.returncode == 0, two.stderr[-2000:]
    one = _train([*common, "--set", "train.grad_accum=4", "--out", str(tmp_path / "one")], 1, env)
    assert one.returncode == 0, one.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "run.json").read_text())["world_size"] == 2
    a, b = (load_file(tmp_path / run / "checkpoints" / "step-00000002" / "raw.safetensors") for run in ("two", "one"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
