"""Imagen's sampling options: each UNet of the cascade its own steps, guidance and thresholding."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from t2i.errors import InputError
from t2i.pipelines.options import SAMPLERS, SPACINGS, THRESHOLDS, SamplingOptionsBase, option, scene_reading_option, stage_sampler


@dataclass(frozen=True)
class ImagenSamplingOptions(SamplingOptionsBase):
    sweep_steps: ClassVar[tuple[str, ...]] = ("base_steps",)
    sweep_guidance: ClassVar[str] = "base_guidance"  # what `t2i eval report` sweeps

    base_steps: int = option(25)
    base_guidance: float = option(3.0)
    base_threshold: str = option("static", "the base UNet's x0 clipping (dynamic: Imagen's, at the 99.5th percentile)", THRESHOLDS)
    base_experts: str = option("on", "on: the base's high-noise experts, where the model has them, sample the noisiest steps (eDiff-I); off: the base alone",
                               ("on", "off"))
    # each listed phrase's token states mixed with the phrase encoded alone (t2i.text.phrases)
    phrase_mix: float = option(0.0, "0 to 1: mix the token states of each phrase a prompt lists ('and', commas, 'plus', ...) with that phrase encoded alone (binds colours to their own shapes)",
                               fraction=True)
    # w > 0: every UNet's conditional prediction is (1 - w) the prompt's and w that of the prompt's
    # nearest training caption by the frozen sentence encoder (t2i/pipelines/caption_memory.py)
    caption_memory: float = option(0.0, "0 to 1: how far the prompt's conditioning moves to that of its nearest training captions (pipelines with a caption memory)",
                                    fraction=True)
    # with a scene reader (shapes): a prompt that is not a caption is drawn as the caption of the
    # scene read from it when the reading is surer than this
    scene_reading: float = scene_reading_option()
    # a cascade may hold more super-resolution UNets than it runs by default (imagen-shapes: 64 -> 128)
    sr_stages: int | None = option(None, "how many of the cascade's super-resolution UNets run, lowest resolution first (default: all)", kind=int)
    sr_steps: int = option(20)
    sr_guidance: float = option(1.0)
    sr_threshold: str = option("static", "the super-resolution UNets' x0 clipping", THRESHOLDS)
    # noise-conditioning augmentation at sampling: the low-res input is noised to this fraction
    # of the diffusion's steps, and the UNet is told so (the paper sweeps 0 to 0.3)
    sr_aug_level: float = option(0.0, "0 to 1: noise the super-resolution UNets' low-res input to this fraction of their diffusion steps", fraction=True)
    sampler: str = option("ddim", "ddim and ddpm walk respaced steps; the others are few-step solvers (docs/results/samplers.md)", SAMPLERS)
    sr_sampler: str | None = stage_sampler("super-resolution UNets")
    spacing: str = option("uniform", "where the steps fall: uniform, trailing, or karras (noise levels; not for ddim or ddpm)", SPACINGS)

    def __post_init__(self) -> None:
        self.check_ranges()
        if self.sr_stages is not None and self.sr_stages < 0:
            raise InputError(f"sr-stages must be 0 or more, got {self.sr_stages}")
