"""unCLIP's sampling options: how each of its stages samples. Guidance 1 = no classifier-free guidance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from t2i.pipelines.options import SAMPLERS, SPACINGS, THRESHOLDS, SamplingOptionsBase, option, scene_reading_option, stage_sampler

# What the decoder is conditioned on (DALL-E 2, section 5.1): the prior's image embedding, the
# CLIP text embedding in its place, or no embedding at all (text tokens only).
IMAGE_EMBEDDINGS = ("prior", "text", "none")


@dataclass(frozen=True)
class SamplingOptions(SamplingOptionsBase):
    sweep_steps: ClassVar[tuple[str, ...]] = ("prior_steps", "decoder_steps")  # what `t2i eval sweep --param steps` varies
    sweep_guidance: ClassVar[str] = "decoder_guidance"  # what `t2i eval report` sweeps

    prior_steps: int = option(25)
    prior_guidance: float = option(2.0)
    prior_candidates: int = option(2, "embeddings drawn per caption; the closest to the text is kept")
    decoder_steps: int = option(25)
    decoder_guidance: float = option(3.0)
    # None: decoder_guidance scales embedding and caption together (2 evaluations per step)
    decoder_text_guidance: float | None = option(None, "guide the caption tokens separately: --decoder-guidance then scales the image embedding alone", kind=float)
    # k > 1: CLIP reranking, a k-fold decoder batch
    decoder_candidates: int = option(1, "CLIP reranking: decode k images per image and keep the one CLIP ranks first for the caption: "
                                        "by cosine, plus its matching head's logit if it has one (a k-fold decoder batch)")
    upsampler_steps: int = option(15)
    sampler: str = option("ddim", "ddim and ddpm walk respaced steps; the others are few-step solvers (docs/results/samplers.md)", SAMPLERS)
    prior_sampler: str | None = stage_sampler("prior")
    upsampler_sampler: str | None = stage_sampler("upsamplers")
    spacing: str = option("uniform", "where the steps fall: uniform, trailing, or karras (noise levels; not for ddim or ddpm)", SPACINGS)
    # Static, not Imagen's dynamic: on images with saturated (white) backgrounds, dynamic
    # thresholding divides the whole x0 by its overshoot and greys the background; decoding
    # true emoji CLIP embeddings gave fidelity@5 0.16 static vs 0.05 dynamic (64 images).
    threshold: str = option("static", "the decoder's x0 clipping", THRESHOLDS)
    upsampler_threshold: str = option("static", "the upsamplers' x0 clipping", THRESHOLDS)
    # w > 0: the prior reads the prompt's CLIP text embedding blended w of the way to those of
    # its nearest training captions by the frozen sentence encoder (pipelines/caption_memory.py)
    caption_memory: float = option(0.0, "0 to 1: how far the prompt's conditioning moves to that of its nearest training captions (pipelines with a caption memory)",
                                    fraction=True)
    # with a scene reader (shapes): a prompt that is not a caption is drawn as the caption of the
    # scene read from it when the reading is surer than this
    scene_reading: float = scene_reading_option()

    def __post_init__(self) -> None:
        self.check_ranges()
