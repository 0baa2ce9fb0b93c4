"""The `options` section of each training stage: the stage's own knobs, typed, with their defaults
written once. A preset or `--set` naming an option a stage does not have is an error, and so is a
value outside its kind (a rate outside 0..1, a fractional count)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from t2i.errors import InputError
from t2i.text.negatives import negative_kinds

# a low-res UNet's training options that only matter at sampling time: kept in its settings, and
# a preset may change them at assembly
UPSAMPLER_SAMPLING = ("sample_aug_level", "sample_start_level")

# each kind of option: what its values must be, and the check
KINDS = {
    "rate": ("a number from 0 to 1", lambda v: 0 <= v <= 1),
    "scale": ("a number >= 0", lambda v: v >= 0 and math.isfinite(v)),
    "count": ("an integer >= 0", lambda v: v >= 0),
    "flag": ("true or false", lambda v: True),
}


def _option(kind: str, default):
    return field(default=default, metadata={"kind": kind, "must_be": KINDS[kind][0]})


def rate(default: float):
    return _option("rate", float(default))


def scale(default: float):
    return _option("scale", float(default))


def count(default: int):
    return _option("count", int(default))


def flag(default: bool):
    return _option("flag", bool(default))


def check_kinds(options) -> None:
    """Every field declared with a kind holds a value of that kind."""
    for f in fields(options):
        kind = f.metadata.get("kind")
        if kind is not None and not KINDS[kind][1](getattr(options, f.name)):
            raise InputError(f"{f.name} must be {KINDS[kind][0]}, got {getattr(options, f.name)!r}")


@dataclass(frozen=True)
class CaptionOptions:
    """Shared by every stage that reads captions."""

    max_length: int = count(32)  # text tokens kept per caption
    caption_augment: float = rate(0.0)  # the chance that a drawn caption is replaced by a rephrasing (t2i.text.augment)
    # the chance that an image's first caption (an emoji's name) is drawn instead of one of all its
    # captions at random: a caption memory hands on names, so sampling reads them far more often
    first_caption: float = rate(0.0)
    # shapes only: this many more scenes of one shape said 2-4 times join the training scenes
    # (t2i.data.shapes.counting_scene), whose 20,000 hold only about 2,400 such scenes
    counting_scenes: int = count(0)

    def __post_init__(self) -> None:
        check_kinds(self)


@dataclass(frozen=True)
class DenoiserOptions(CaptionOptions):
    """The UNet stage's caption terms, step range and trained weights (t2i/train/unet_stage.py),
    written once for every stage that trains a text-conditioned UNet: unCLIP's decoder, Imagen's UNets."""

    # the weight of a rephrased caption's prediction pulled toward its caption's (see UNetStage.loss)
    text_consistency: float = scale(0.0)
    # the weight of a hard-negative caption denoising worse than the true one (see UNetStage.loss)
    caption_contrast: float = scale(0.0)
    contrast_negatives: str = "all"  # which hard negatives: all, or a comma-separated subset of relation,colour,size,count,one
    # rephrased captions (caption_augment) get hard negatives too: the contrast reads every wording
    contrast_rephrased: bool = flag(False)
    min_step: int = count(0)  # train on diffusion steps from this one up (0: all): a high-noise expert (see UNetStage)
    # draw each group of images (an emoji and its skin-tone variants) equally often, not each image (t2i.train.stages.GroupDraw)
    balance_groups: bool = flag(False)
    # train only the weights whose names hold one of these comma-separated pieces ("attn,text");
    # the rest stay as --init-from left them (empty: train every weight)
    train_only: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        negative_kinds(self.contrast_negatives)  # a typo fails when the options are read


@dataclass(frozen=True)
class UNetOptions(DenoiserOptions):
    """Every option of the UNet stage (t2i/train/unet_stage.py), for a UNet with every condition."""

    drop_embed: float = rate(0.1)
    drop_text: float = rate(0.5)
    embed_noise: float = scale(0.0)
    low_res_size: int = count(32)
    max_aug_level: int = count(0)
    sample_aug_level: int = count(0)
    sample_start_level: int = count(0)


def sampling_settings(options) -> dict[str, int]:
    """A low-res UNet's options that only matter at sampling time (assemble may update them)."""
    return {name: getattr(options, name) for name in UPSAMPLER_SAMPLING}
