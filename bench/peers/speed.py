"""Speed at equal size, measured in-process on one built System (see systems.py).

Each function is one measurement; the caller (worker.py, driven by run.py) repeats it and
interleaves systems, because a shared machine drifts. FLOPs are counted by
torch.utils.flop_counter (matmuls and convolutions, the same counting for every system).
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

import torch
from systems import TEXT_DIM, System


def decoder_batch(b: int, seed: int = 0, tokens: int = 16) -> dict:
    """Synthetic decoder inputs of the real shapes: images in [-1, 1], 5..16 real tokens per row."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, tokens + 1, (b,), generator=g)
    mask = torch.arange(tokens)[None] < lengths[:, None]
    return {"x": torch.rand(b, 3, 32, 32, generator=g) * 2 - 1,
            "tokens": torch.randn(b, tokens, TEXT_DIM, generator=g) * mask[..., None],
            "mask": mask, "pooled": torch.nn.functional.normalize(torch.randn(b, TEXT_DIM, generator=g), dim=-1)}


def prior_batch(b: int, embed_dim: int, token_dim: int, seed: int = 0, tokens: int = 16) -> dict:
    """Synthetic prior inputs: unit-norm target and text embeddings, token states zero at padding."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, tokens + 1, (b,), generator=g)
    mask = torch.arange(tokens)[None] < lengths[:, None]
    unit = lambda: torch.nn.functional.normalize(torch.randn(b, embed_dim, generator=g), dim=-1)  # noqa: E731
    return {"z": unit(), "text_embed": unit(), "tokens": torch.randn(b, tokens, token_dim, generator=g) * mask[..., None], "mask": mask}


def condition(batch: dict, n: int) -> dict:
    """The first n rows of a batch, without the training target: what sampling is given."""
    return {k: v[:n] for k, v in batch.items() if k not in ("x", "z")}


def train_step(system: System, opt: torch.optim.Optimizer, batch: dict) -> float:
    """One step as every system trains in this harness: loss, backward, clip to 1, AdamW."""
    system.set_training(True)
    loss = system.loss(batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(system.trainable(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def train_rate(system: System, opt: torch.optim.Optimizer, batch: dict, steps: int) -> dict:
    """Images per second over `steps` full training steps (call once untimed to warm up)."""
    b = len(next(iter(batch.values())))
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(system, opt, batch)
    dt = time.perf_counter() - t0
    return {"images_per_s": b * steps / dt, "step_s": dt / steps}


def sample_time(system: System, cond: dict, steps: int, guidance: float, seed: int = 0) -> dict:
    """Seconds per sample for one sampling call of len(cond) samples over `steps` steps."""
    system.set_training(False)
    n = len(next(iter(cond.values())))
    t0 = time.perf_counter()
    with torch.no_grad():
        out = system.sample(cond, steps, guidance, seed)
    dt = time.perf_counter() - t0
    if not torch.isfinite(out).all():
        raise RuntimeError(f"{system.name}: non-finite samples")
    return {"s_per_sample": dt / n, "call_s": dt}


def flops(system: System, batch: dict, cond: dict, guidance: float) -> dict:
    """Training FLOPs per image (one forward of the loss x 3) and sampling FLOPs per image and step
    (a 2-step guided sampling call, halved), as counted by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    b = len(next(iter(batch.values())))
    n = len(next(iter(cond.values())))
    system.set_training(True)
    with FlopCounterMode(display=False) as fc:
        system.loss(batch)
    train = 3 * fc.get_total_flops() / b
    system.set_training(False)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        system.sample(cond, 2, guidance, 0)
    return {"train_flop_per_image": train, "sample_flop_per_image_step": fc.get_total_flops() / (2 * n)}


# ---- memory -------------------------------------------------------------------------------------
def reset_peak_rss() -> bool:
    """Reset this process's peak resident set (Linux: `5` to /proc/self/clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set since the last reset (VmHWM), else since the process started."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
