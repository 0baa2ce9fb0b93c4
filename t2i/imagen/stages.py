"""Imagen's two training stages: the same UNet stage as unCLIP's decoder and upsampler, with the
conditions Imagen uses. A base UNet reads text alone; a super-resolution UNet reads text and the
low-resolution image, noised to a level drawn per image that the network is told
(noise-conditioning augmentation, paper section 2.5)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from t2i.checkpoint import Component
from t2i.errors import InputError
from t2i.text.encoder import NUM_LAYERS
from t2i.train.options import DenoiserOptions, count, rate
from t2i.train.unet_stage import UNetStage


@dataclass(frozen=True)
class BaseOptions(DenoiserOptions):
    drop_text: float = rate(0.1)  # caption dropped, for classifier-free guidance (the paper's 10%)
    text_layers: int = count(0)  # MiniLM's token states after this many of its 6 layers (0: all); the paper's text-depth study
    # the chance that a caption listing phrases ("and", commas, "plus", ...) is read with them mixed towards their
    # own encodings (t2i.text.phrases), so that sampling with --phrase-mix stays in distribution
    phrase_mix: float = rate(0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.text_layers > NUM_LAYERS:
            raise InputError(f"text_layers must be from 0 (all) to {NUM_LAYERS}, got {self.text_layers}")


@dataclass(frozen=True)
class SuperResOptions(BaseOptions):
    low_res_size: int = count(32)  # the side of the image it upsamples
    # noise-conditioning augmentation: the low-res input is noised to a diffusion step drawn
    # uniformly from 0..max_aug_level per image; the step is an input of the network
    max_aug_level: int = count(500)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low_res_size < 1:
            raise InputError(f"low_res_size must be >= 1, got {self.low_res_size}")


def text_settings(options) -> dict[str, int]:
    """What the pipeline needs to encode prompts as training encoded the captions."""
    return {"max_length": options.max_length, "text_layers": options.text_layers}


class ImagenBaseStage(UNetStage):
    name, options = "imagen-base", BaseOptions

    @classmethod
    def model_config(cls, model: dict[str, Any], needs: dict[str, Component]) -> dict[str, Any]:
        if not model.get("text_dim") or model.get("embed_dim") or model.get("low_res"):
            raise InputError(f"an {cls.name} UNet reads text alone: set model.text_dim, and neither embed_dim nor low_res")
        return model

    @classmethod
    def settings(cls, options, model: dict[str, Any]) -> dict[str, Any]:
        return text_settings(options)


class ImagenSuperResStage(UNetStage):
    name, options = "imagen-sr", SuperResOptions

    @classmethod
    def model_config(cls, model: dict[str, Any], needs: dict[str, Component]) -> dict[str, Any]:
        if not (model.get("text_dim") and model.get("low_res") and model.get("noise_aug")) or model.get("embed_dim"):
            raise InputError(f"an {cls.name} UNet reads text and a low-res image with its noise level: set model.text_dim, low_res and noise_aug (and no embed_dim)")
        return model

    @classmethod
    def settings(cls, options, model: dict[str, Any]) -> dict[str, Any]:
        return {**text_settings(options), "low_res_size": options.low_res_size, "max_aug_level": options.max_aug_level}
