"""The one training loop for every component.

A stage supplies the model, a batch for a step and the loss; the loop owns the device and
processes (Accelerate), optimiser, EMA, gradient clipping and accumulation, progress display,
sample previews and atomic, resumable checkpoints.

Every random draw of step k comes from generators seeded by (seed, k), so a resumed run takes
exactly the batches and noise an uninterrupted run would have taken: the data position is the
step counter itself.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from t2i.checkpoint import CheckpointError, Component, atomic_folder, load_weights, write_component_files
from t2i.errors import InputError
from t2i.files import save_tensors
from t2i.train.ema import EMA


def write_text_atomically(path: Path, text: str) -> None:
    """A kill mid-write leaves the old file whole, never half of the new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    lr_decay: str = "constant"  # or "cosine"
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    grad_accum: int = 1
    seed: int = 0
    log_every: int = 20
    sample_every: int = 500
    save_every: int = 250
    keep_checkpoints: int = 2
    mixed_precision: str = "no"  # "bf16"/"fp16" only where the hardware has it (never on CPU)
    max_nonfinite: int = 0  # steps with a NaN or infinite loss that are skipped before training stops

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "sample_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise InputError(f"train.{name} must be >= 1")
        if not (0 < self.lr < math.inf):
            raise InputError(f"train.lr must be a finite number > 0, got {self.lr}")
        for name in ("weight_decay", "grad_clip"):
            if not (0 <= getattr(self, name) < math.inf):
                raise InputError(f"train.{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.max_nonfinite < 0:
            raise InputError(f"train.max_nonfinite must be >= 0, got {self.max_nonfinite}")
        if self.lr_decay not in ("constant", "cosine"):
            raise InputError(f"train.lr_decay must be constant or cosine, got {self.lr_decay!r}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise InputError(f"train.mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")


class TrainingDiverged(InputError):
    """The loss stopped being a number (a learning rate too high, say); nothing non-finite was saved."""


def json_line(figures: dict[str, Any]) -> str:
    """One log.jsonl line; a figure that is not a finite number (a metric with nothing to measure) is null."""
    clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in figures.items()}
    return json.dumps(clean, allow_nan=False) + "\n"


class Stage(Protocol):
    """What a component's training supplies to the loop."""

    name: str
    component: Component  # the model being trained, with its role and settings

    def batch(self, step: int, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]: ...

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor: ...

    def preview(self, model: torch.nn.Module, step: int, out_dir: Path) -> dict[str, float]: ...


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A generator that depends only on (seed, step, stream): the basis of exact resumption."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1_009 + stream) % 2**63)


def learning_rate(config: TrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    if config.lr_decay == "cosine":
        return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, step / config.steps)))
    return config.lr * warm


class Trainer:
    def __init__(self, stage: Stage, config: TrainConfig, out_dir: str | Path, *, run_config: dict[str, Any] | None = None, progress: bool = True) -> None:
        from accelerate import Accelerator  # heavy import, training only

        self.stage, self.config, self.out_dir = stage, config, Path(out_dir)
        self.run_config = run_config or {}
        self.progress = progress
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available())
        model = stage.component.model.train()
        self.ema = EMA(model, decay=config.ema_decay)
        decay, no_decay = [], []
        for p in model.parameters():
            if p.requires_grad:  # a stage may freeze some (options.train_only)
                (decay if p.ndim >= 2 else no_decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.99))
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.step = 0

    # ---- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_root(self) -> Path:
        return self.out_dir / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        pointer = self.out_dir / "latest"
        if not pointer.exists():
            return None
        path = self.checkpoint_root / pointer.read_text().strip()
        return path if (path / "state.json").exists() else None

    def _last_good(self) -> str:
        last = self.latest_checkpoint()
        return f"The last checkpoint, {last}, is intact." if last else "No checkpoint was written."

    def save(self) -> Path:
        """Write step-N/ atomically, then move the `latest` pointer: a kill at any moment leaves the last good one."""
        if not self.accelerator.is_main_process:
            return self.checkpoint_root
        name = f"step-{self.step:08d}"
        raw = self.accelerator.unwrap_model(self.model)
        for model in (raw, self.ema.model):
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise TrainingDiverged(f"step {self.step}: the weights hold NaN or infinite values and were not saved; try a lower --lr. "
                                       f"{self._last_good()}")
        component = Component(model=self.ema.model, role=self.stage.component.role, settings=self.stage.component.settings, info={"step": self.step, "run": self.run_config})
        # a step redone after a resume replaces its own earlier checkpoint, never anything else
        with atomic_folder(self.checkpoint_root / name, overwrite=True, owned=lambda p: (p / "state.json").is_file()) as tmp:
            write_component_files(tmp, component)  # the EMA weights: what inference uses
            save_tensors({k: v.detach().cpu().contiguous() for k, v in raw.state_dict().items()}, tmp / "raw.safetensors")
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            # written last, with every other file's checksum: resume trusts a checkpoint only whole
            (tmp / "state.json").write_text(json.dumps({"step": self.step, "train": self.run_config.get("train", {}), "sha256": _checksums(tmp)}))
        write_text_atomically(self.out_dir / "latest", name)
        self._prune(keep=name)
        return self.checkpoint_root / name

    def _prune(self, keep: str) -> None:
        old = sorted(p for p in self.checkpoint_root.glob("step-*") if p.name != keep)
        for path in old[: max(0, len(old) - (self.config.keep_checkpoints - 1))]:
            shutil.rmtree(path, ignore_errors=True)

    def resume(self) -> bool:
        """Restore weights, EMA, optimiser and step from the newest intact checkpoint (the one
        `latest` names, else the others, newest first); False if there is none. A damaged one
        (a file that does not match its checksum or cannot be read) is named in a warning,
        passed over and renamed damaged-step-N; if every one is damaged, that is an error."""
        candidates = self._checkpoints_newest_first()
        if not candidates:
            return False
        damaged = []
        for path in candidates:
            try:
                state = self._verified_state(path)
                load_weights(self.accelerator.unwrap_model(self.model), path / "raw.safetensors")
                load_weights(self.ema.model, path / "model.safetensors")
                self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
            except Exception as e:  # any damage: this checkpoint is not used
                warnings.warn(f"checkpoint {path} is damaged ({' '.join(str(e).split())[:200]}); trying an older one", stacklevel=2)
                damaged.append(path)
                continue
            self.step = state["step"]
            break
        else:
            raise CheckpointError(f"{self.out_dir}: every checkpoint is damaged ({', '.join(p.name for p in candidates)}); start a new run")
        for path in damaged if self.accelerator.is_main_process else ():  # kept for a look, out of the way of pruning and of the steps redone
            path.rename(path.with_name(f"damaged-{path.name}"))
        self._forget_after(self.step)
        before = self.out_dir / "run.json"
        if before.exists() and not self.run_config.get("init_from"):
            # --resume excludes --init-from: keep the record of what the run was warm-started from
            self.run_config["init_from"] = json.loads(before.read_text()).get("init_from")
        return True

    def _all_finite(self, values: list[float]) -> bool:
        """Whether every process's losses of this step are finite: all skip the update, or none does."""
        bad = torch.tensor([0.0 if all(math.isfinite(v) for v in values) else 1.0], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        return float(bad) == 0.0

    def _mean_over_processes(self, value: float) -> float:
        if self.accelerator.num_processes == 1:
            return value
        return float(self.accelerator.reduce(torch.tensor([value], device=self.accelerator.device), reduction="mean"))

    def _checkpoints_newest_first(self) -> list[Path]:
        latest = self.latest_checkpoint()
        others = sorted((p for p in self.checkpoint_root.glob("step-*") if (p / "state.json").is_file() and p != latest), reverse=True) if self.checkpoint_root.is_dir() else []
        return ([latest] if latest else []) + others

    @staticmethod
    def _verified_state(path: Path) -> dict:
        state = json.loads((path / "state.json").read_text())
        for name, digest in state.get("sha256", {}).items():  # checkpoints from before checksums have none
            if _sha256(path / name) != digest:
                raise CheckpointError(f"{name} does not match its checksum")
        return state

    def _forget_after(self, step: int) -> None:
        """What a killed run wrote after the checkpoint it resumes from: its log lines of the steps
        about to be redone (they would appear twice), and the half-written checkpoint folders that
        the kill left (`.step-*.tmp-*`, never anything else)."""
        log = self.out_dir / "log.jsonl"
        if log.exists() and self.accelerator.is_main_process:
            kept = [line for line in log.read_text().splitlines(keepends=True) if line.strip() and json.loads(line).get("step", 0) <= step]
            write_text_atomically(log, "".join(kept))
        if self.accelerator.is_main_process and self.checkpoint_root.is_dir():
            for litter in self.checkpoint_root.glob(".step-*.tmp-*"):
                if litter.is_dir():
                    shutil.rmtree(litter, ignore_errors=True)

    # ---- the loop ----------------------------------------------------------------------------
    def step_once(self) -> tuple[list[float], bool]:
        """One optimizer step over all its micro-batches, without logging or saving.

        Returns each micro-batch's loss and whether the weights were updated: a step whose loss is
        not finite on some process is skipped everywhere (it would spread NaN into every weight),
        and the next step draws another batch.
        """
        cfg, stage = self.config, self.stage
        world = self.accelerator.num_processes
        for g in self.optimizer.param_groups:
            g["lr"] = learning_rate(cfg, self.step)
        torch.manual_seed(cfg.seed * 7919 + self.step)  # dropout and any other global draws
        step_losses = []
        for micro in range(cfg.grad_accum):
            # each process (GPU) draws its own batch; with one process this is stream 2·micro
            stream = 2 * (micro + cfg.grad_accum * self.accelerator.process_index)
            batch = stage.batch(self.step, cfg.batch_size, step_generator(cfg.seed, self.step, stream))
            batch = {k: v.to(self.accelerator.device) for k, v in batch.items()}
            # several processes: gradients are averaged across them once per step, on the last
            # micro-batch; the earlier ones only accumulate locally
            last = micro == cfg.grad_accum - 1
            with contextlib.nullcontext() if last or world == 1 else self.accelerator.no_sync(self.model):
                with self.accelerator.autocast():
                    loss = stage.loss(self.model, batch, step_generator(cfg.seed, self.step, stream + 1)) / cfg.grad_accum
                self.accelerator.backward(loss)
            step_losses.append(loss.item() * cfg.grad_accum)
        self.step += 1
        if not self._all_finite(step_losses):
            self.optimizer.zero_grad(set_to_none=True)
            return step_losses, False
        if cfg.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.accelerator.unwrap_model(self.model), self.step)
        return step_losses, True

    def train(self, *, max_steps: int | None = None) -> dict[str, float]:
        """Train until config.steps (or `max_steps` more steps); returns the last logged figures."""
        cfg, stage, main = self.config, self.stage, self.accelerator.is_main_process
        world = self.accelerator.num_processes  # each process draws its own batch: a step sees world x batch_size images
        if main:  # one process writes what a run leaves behind; the others only compute
            (self.out_dir / "samples").mkdir(parents=True, exist_ok=True)
            write_text_atomically(self.out_dir / "run.json", json.dumps({**self.run_config, "world_size": world}, indent=2))  # --resume reads its settings
        stop = cfg.steps if max_steps is None else min(cfg.steps, self.step + max_steps)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (self.progress and main), desc=f"train {stage.name}", dynamic_ncols=True)
        log_path = self.out_dir / "log.jsonl"
        figures: dict[str, float] = {}
        losses, seen, t0 = [], 0, time.perf_counter()
        nonfinite = 0
        while self.step < stop:
            step_losses, applied = self.step_once()
            if not applied:
                nonfinite += 1
                if nonfinite > cfg.max_nonfinite:
                    raise TrainingDiverged(f"step {self.step}: the loss is {step_losses[-1]} ({nonfinite} step(s) so far; train.max_nonfinite is {cfg.max_nonfinite}); "
                                           f"try a lower --lr. {self._last_good()}")
                bar.update(1)
                continue
            losses += step_losses
            seen += cfg.batch_size * cfg.grad_accum * world
            if self.step % cfg.log_every == 0 or self.step == stop:
                elapsed = time.perf_counter() - t0
                loss = self._mean_over_processes(sum(losses) / len(losses))  # every process takes part, at the same steps
                figures = {"step": self.step, "loss": loss, "images_per_s": seen / elapsed, "lr": learning_rate(cfg, self.step - 1)}
                bar.set_postfix(loss=f"{figures['loss']:.4f}", img_s=f"{figures['images_per_s']:.1f}")
                if main:
                    with log_path.open("a") as f:
                        f.write(json_line(figures))
                losses, seen, t0 = [], 0, time.perf_counter()
            bar.update(1)
            if main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.ema.model.eval()
                metrics = stage.preview(self.ema.model, self.step, self.out_dir / "samples")
                if metrics:
                    figures.update(metrics)
                    with log_path.open("a") as f:
                        f.write(json_line({"step": self.step, **metrics}))
                    bar.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if self.step % cfg.save_every == 0 or self.step == stop:
                self.save()
        bar.close()
        return figures


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(folder: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "state.json"}
