"""Quality at equal budget, in-process on one built System (see systems.py).

The protocol, the same for every system:
1. Data: the shapes world at 32x32 (`t2i.data.sources.load_dataset("shapes", 32)`: 20,000
   training scenes, the held-out colour-shape pairs never among them), rendered once by run.py
   into an .npz every worker reads. Every caption is encoded once by the frozen MiniLM
   (`t2i.train.captions.CaptionTable`, cached on disk); every system sees the same batches in
   the same order (step k draws its images and one caption per image from seed (seed, k)).
2. Training: batch 32, AdamW lr 2e-4 with a 100-step linear warm-up, gradients clipped at 1,
   no EMA (it would only lag over a budget this short), until the budget is spent. The budget is
   counted in CPU seconds of the worker process by default (`clock="cpu"`): on a shared
   machine wall time depends on the neighbours, CPU time much less; `clock="wall"` is offered.
   Each system's loss includes its own guidance dropout (systems.py).
3. Sampling: the canonical evaluation prompts (`canonical_prompts(per_task)`, the held-out
   ones included), encoded by the same MiniLM, `samples` images each, with the same number of
   steps and the same guidance scale for every system: 2 network evaluations of each image per
   step (guided), however the library batches them.
4. Scoring: `t2i.eval.shapes.score_shapes`, the exact colour-segmentation scorer: per-task
   scores, overall, held-out. Optionally (run.py --emoji) the same on the emoji train split
   (held-out emoji excluded), scored by fidelity@5 as `t2i eval emoji` does.
unCLIP systems (ours, dalle2-pytorch) would normally draw their decoder's image embedding from
a prior trained on CLIP embeddings. dalle2-pytorch's ready CLIPs (OpenAI, OpenCLIP) come from the
network, not reachable here; it could train an x-clip CLIP from scratch, as t2i trains its own,
but one budget split over CLIP, prior and decoder would make the result hinge on the split. So
both unCLIP decoders are given the frozen MiniLM pooled sentence embedding in their
image-embedding slot, at training and at sampling alike (no system gets a CLIP or prior trained
outside the budget), and the priors are compared for speed only.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from speed import train_step
from systems import System


def prepare_data(path: Path, dataset: str = "shapes", count: int = 20000, seed: int = 0) -> Path:
    """Write a training set once into `path` (.npz: images uint8 (N,32,32,3), captions): the shapes
    world's `count` scenes, or the emoji train split (held-out emoji excluded) at 32x32."""
    path = Path(path)
    if not path.exists():
        from t2i.data.sources import load_dataset

        data = load_dataset(dataset, 32, "train", **({"shapes_count": count, "seed": seed} if dataset == "shapes" else {}))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=data.images, captions=np.array(["\x1f".join(c) for c in data.captions]))
        tmp.replace(path)
    Batches(path)  # encode every caption now (cached on disk), not inside a worker
    return path


class Batches:
    """The shared stream of training batches: batch k is a pure function of (seed, k)."""

    def __init__(self, data_path: Path, *, batch: int = 32, seed: int = 0) -> None:
        from t2i.data.dataset import ImageCaptionSet
        from t2i.train.captions import CaptionTable

        z = np.load(data_path)
        self.images = z["images"]
        data = ImageCaptionSet(self.images, [str(c).split("\x1f") for c in z["captions"]])
        self.captions = CaptionTable(data, max_length=32)
        self.batch, self.seed = batch, seed

    def __call__(self, step: int) -> dict:
        from t2i.data.dataset import to_model_range

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.images), (self.batch,), generator=g)
        enc = self.captions.batch(self.captions.draw(idx, g))
        return {"x": to_model_range(self.images[idx.numpy()]), "tokens": enc.tokens, "mask": enc.mask, "pooled": enc.pooled}


def train_for_budget(system: System, batches, budget_s: float, *, clock: str = "cpu", lr: float = 2e-4,
                     warmup: int = 100, max_steps: int | None = None) -> dict:
    """Train until `budget_s` seconds of `clock` ("cpu": this process's CPU time, or "wall") are
    spent (checked after each step, so the last step may run over), or max_steps."""
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be cpu or wall, got {clock!r}")
    now = time.process_time if clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    opt = system.optimizer(lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    losses, step = [], 0
    c0, w0 = time.process_time(), time.perf_counter()
    start = now()
    while now() - start < budget_s and (max_steps is None or step < max_steps):
        losses.append(train_step(system, opt, batches(step)))
        sched.step()
        step += 1
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    b = batches.batch if hasattr(batches, "batch") else None
    tail = losses[-20:]
    return {"steps": step, "images_seen": step * b if b else None, "cpu_s": cpu, "wall_s": wall, "clock": clock,
            "budget_s": budget_s, "final_loss": float(np.mean(tail)) if tail else None,
            "first_loss": losses[0] if losses else None}


def eval_prompts(per_task: int, seed: int = 0):
    from t2i.data.shapes_eval import canonical_prompts

    return canonical_prompts(per_task=per_task, seed=seed)


def encode(prompts: list[str]) -> dict:
    """Prompts -> the frozen MiniLM conditioning every decoder takes: tokens, mask, pooled."""
    from t2i.text.encoder import get_text_encoder

    enc = get_text_encoder(32).encode(prompts)
    return {"tokens": enc.tokens * enc.mask[..., None], "mask": enc.mask, "pooled": enc.pooled}


def generate(system: System, prompts: list[str], *, samples: int, steps: int, guidance: float, batch: int = 32, seed: int = 0) -> np.ndarray:
    """`samples` images per prompt, prompt-major, uint8 (N, 32, 32, 3); chunk k is seeded seed + k."""
    from t2i.data.dataset import to_uint8

    cond = encode(prompts)
    cond = {k: v.repeat_interleave(samples, dim=0) for k, v in cond.items()}
    total = len(prompts) * samples
    out = []
    system.set_training(False)
    for k, start in enumerate(range(0, total, batch)):
        chunk = {key: v[start : start + batch] for key, v in cond.items()}
        with torch.no_grad():
            out.append(to_uint8(system.sample(chunk, steps, guidance, seed + k)))
    return np.concatenate(out)


def score(prompts, images: np.ndarray, samples: int) -> dict:
    """The shapes scorer's summary (six tasks, overall, held_out) and its image counts."""
    from t2i.eval.shapes import score_shapes

    r = score_shapes(prompts, images, samples)
    return {"summary": r["summary"], "counts": r["counts"]}


def save_sample_sheet(path: Path, prompts, images: np.ndarray, samples: int, per_group: int = 2) -> Path:
    """A captioned sheet: the first sample of the first `per_group` prompts of each task (and held-out)."""
    from t2i.eval.sheets import save_sheet

    picked, seen = [], {}
    for i, p in enumerate(prompts):
        key = "held_out" if p.held_out else p.task
        if seen.get(key, 0) < per_group:
            seen[key] = seen.get(key, 0) + 1
            picked.append(i)
    return save_sheet(path, [images[i * samples] for i in picked], [prompts[i].prompt for i in picked])


def emoji_fidelity(images: np.ndarray, chosen: np.ndarray, samples: int) -> float:
    """fidelity@5 as `t2i eval emoji` computes it: at 64x64 against every emoji image, any skin tone a hit."""
    from t2i.data.dataset import resize_uint8
    from t2i.data.emoji import load_emoji
    from t2i.eval.emoji import fidelity_at_k

    train, everything = load_emoji(64, "train"), load_emoji(64, "all")
    return fidelity_at_k(resize_uint8(images, 64), np.repeat(train.groups[chosen], samples), everything.images, everything.groups)


def run_quality(system: System, data_path: Path, *, budget_s: float, dataset: str = "shapes", clock: str = "cpu", batch: int = 32,
                per_task: int = 25, limit: int = 200, samples: int = 2, steps: int = 25, guidance: float = 3.0,
                out_dir: Path | None = None, sheet_dir: Path | None = None, max_steps: int | None = None) -> dict:
    """The whole protocol for one system: train for the budget, sample the evaluation prompts, score.

    shapes: `per_task` canonical prompts per task (+ held-out), the shapes scorer. emoji: one
    training caption of each of `limit` base emoji (`t2i eval emoji`'s choice), fidelity@5.
    out_dir: where the generated images go (.npy); sheet_dir: where the sample sheet goes (PNG)."""
    batches = Batches(data_path, batch=batch)
    train = train_for_budget(system, batches, budget_s, clock=clock, max_steps=max_steps)
    if dataset == "shapes":
        prompts = eval_prompts(per_task)
        texts = [p.prompt for p in prompts]
    else:
        from t2i.eval.emoji import chosen_captions

        chosen, texts = chosen_captions("train", limit)
    t0 = time.perf_counter()
    images = generate(system, texts, samples=samples, steps=steps, guidance=guidance)
    sample_wall = time.perf_counter() - t0
    result = {"dataset": dataset, "train": train,
              "eval": {"prompts": len(texts), "samples": samples, "steps": steps, "guidance": guidance,
                       "network_evals_per_image": 2 * steps if guidance != 1 else steps, "wall_s": sample_wall}}
    if dataset == "shapes":
        result.update(score(prompts, images, samples))
    else:
        result["summary"] = {"fidelity@5": emoji_fidelity(images, chosen, samples)}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        np.save(Path(out_dir) / f"{system.name}-{dataset}-images.npy", images)
    if sheet_dir is not None:
        path = Path(sheet_dir) / f"{system.name}-{dataset}.png"
        if dataset == "shapes":
            result["sheet"] = str(save_sample_sheet(path, prompts, images, samples))
        else:
            from t2i.eval.sheets import save_sheet

            result["sheet"] = str(save_sheet(path, [images[i * samples] for i in range(min(16, len(texts)))], texts[:16]))
    return result
