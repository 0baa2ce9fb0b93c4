"""The `diffusion` section of a stage: which forward process it is trained on, and how."""
from __future__ import annotations

from dataclasses import dataclass

from t2i.diffusion.gaussian import OBJECTIVES, SCHEDULES, WEIGHTINGS, GaussianDiffusion
from t2i.errors import InputError


@dataclass(frozen=True)
class DiffusionConfig:
    schedule: str = "cosine"
    num_steps: int = 1000
    objective: str = "eps"  # what the network predicts: eps, x0 or v
    weighting: str = "none"  # the loss's per-timestep weight: none or min_snr (min-SNR-5)

    def __post_init__(self) -> None:
        for name, allowed in (("schedule", SCHEDULES), ("objective", OBJECTIVES), ("weighting", WEIGHTINGS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.num_steps < 1:
            raise InputError(f"num_steps must be >= 1, got {self.num_steps}")

    def build(self) -> GaussianDiffusion:
        return GaussianDiffusion(schedule=self.schedule, num_steps=self.num_steps, objective=self.objective)
