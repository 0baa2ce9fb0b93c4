"""unCLIP (DALL-E 2): caption -> CLIP text embedding -> prior -> image embedding -> decoder -> upsamplers.

A pipeline folder holds one component folder per stage and `pipeline.json`:

    {"format_version": 1, "pipeline": "unclip", "clip": "clip", "prior": "prior",
     "decoder": "decoder", "upsamplers": ["upsampler-64"], "defaults": {...sampling options...}}
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from t2i.checkpoint import CheckpointError, Component, atomic_folder, load_component, resolve_component, write_component_files
from t2i.data.dataset import to_model_range
from t2i.diffusion.noise import RowGenerators, check_request, row_seed
from t2i.errors import InputError
from t2i.pipelines.base import Pipeline, assembled_reader, folder_reader, part_folder, preset_defaults, prompt_list, read_pipeline_json, to_pil, write_pipeline_json
from t2i.pipelines.caption_memory import CaptionMemory, assembled_memory, check_memory
from t2i.pipelines.loading import is_pipeline_folder
from t2i.pipelines.sampling import keep_best, run_decoder, run_upsampler
from t2i.pipelines.scene_reading import check_reader
from t2i.text.encoder import get_text_encoder
from t2i.train.options import UPSAMPLER_SAMPLING
from t2i.unclip.options import IMAGE_EMBEDDINGS, SamplingOptions
from t2i.unclip.sampling import run_prior


class UnclipPipeline(Pipeline):
    kind, options_class, upsampling_attribute = "unclip", SamplingOptions, "upsamplers"

    def __init__(self, *, clip: Component, prior: Component, decoder: Component, upsamplers: list[Component] | None = None, defaults: SamplingOptions | None = None,
                 info: dict | None = None, memory: CaptionMemory | None = None, reader: Component | None = None) -> None:
        self.clip, self.prior, self.decoder, self.reader = clip, prior, decoder, reader
        check_reader(reader)
        self.upsamplers = list(upsamplers or [])
        self.defaults = defaults or SamplingOptions()
        self.info = info or {}
        self.memory = memory
        if memory is not None and memory.text_embeds is not None and memory.text_embeds.shape[1] != clip.model.config.embed_dim:
            raise CheckpointError(f"the caption memory holds {memory.text_embeds.shape[1]}-d text embeddings, the CLIP makes {clip.model.config.embed_dim}-d ones")
        check_memory(memory, self.defaults)
        self.text_max_length = int(clip.model.config.max_tokens)
        e = clip.model.config.embed_dim
        if prior.model.config.embed_dim != e or decoder.model.config.embed_dim != e:
            raise CheckpointError(f"stages disagree on the CLIP embedding size (clip {e}, prior {prior.model.config.embed_dim}, decoder {decoder.model.config.embed_dim})")

    @classmethod
    def assemble(cls, stages: dict[str, list[str | Path]], *, preset: dict[str, Any] | None = None, caption_memory: str | None = None,
                 memory_dims: int = 0, info: dict[str, Any] | None = None) -> UnclipPipeline:
        """A pipeline from trained stages: {"clip": [RUN], "prior": [RUN], "decoder": [RUN], "upsampler": [RUN, ...]}
        (run or component folders, upsamplers lowest resolution first). A preset's "pipeline"
        section gives the default sampling options and its upsampler options the sampling-time
        settings; caption_memory names the data whose captions the memory keeps, memory_dims the
        dimensions of its retrieval keys (0: all of the sentence encoder's)."""
        missing = [name for name in ("clip", "prior", "decoder") if len(stages.get(name, [])) != 1]
        if missing:
            raise InputError(f"an unclip pipeline needs one {missing[0]}")
        load = lambda role: [load_component(resolve_component(p), role=role) for p in stages.get(role, [])]  # noqa: E731
        (clip,), (prior,), (decoder,), upsamplers = load("clip"), load("prior"), load("decoder"), load("upsampler")
        defaults = SamplingOptions()
        if preset is not None:  # the preset's sampling-time choices win over those recorded at training time
            defaults = preset_defaults(preset, cls.kind, cls.options_class)
            given = preset.get("upsampler", {}).get("options", {})
            for up in upsamplers:
                up.settings.update({k: int(given[k]) for k in UPSAMPLER_SAMPLING if k in given})
        memory = assembled_memory(caption_memory, defaults, dims=memory_dims, max_length=clip.model.config.max_tokens)
        return cls(clip=clip, prior=prior, decoder=decoder, upsamplers=upsamplers, defaults=defaults, info=info, memory=memory,
                   reader=assembled_reader(stages))

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, path: str | Path) -> UnclipPipeline:
        path = Path(path)
        spec, defaults = read_pipeline_json(path, cls.kind, cls.options_class)
        stage = lambda key, role: load_component(part_folder(path, spec.get(key, key)), role=role)  # noqa: E731
        return cls(clip=stage("clip", "clip"), prior=stage("prior", "prior"), decoder=stage("decoder", "decoder"),
                   upsamplers=[load_component(part_folder(path, p), role="upsampler") for p in spec.get("upsamplers", [])],
                   defaults=defaults, info=spec.get("info", {}), memory=CaptionMemory.load(part_folder(path, spec["memory"])) if spec.get("memory") else None,
                   reader=folder_reader(path, spec))

    def save(self, path: str | Path, *, dtype: torch.dtype = torch.float16, dtypes: Mapping[str, torch.dtype] | None = None, overwrite: bool = False) -> Path:
        """Write the whole pipeline atomically (fp16 weights by default: half the size, loaded as fp32;
        `dtypes` per component by name). An existing `path` is replaced only with overwrite=True, and
        only if it is a pipeline folder."""
        path = Path(path)
        components, storage = self.components(), self.storage_dtypes(dtype, dtypes)
        with atomic_folder(path, overwrite=overwrite, owned=is_pipeline_folder) as tmp:
            for name, comp in components.items():
                (tmp / name).mkdir()
                write_component_files(tmp / name, comp, dtype=storage[name])
            parts = {"clip": "clip", "prior": "prior", "decoder": "decoder", "upsamplers": [n for n in components if n.startswith("upsampler-")]}
            if self.reader is not None:
                parts["reader"] = "reader"
            if self.memory is not None:
                self.memory.save(tmp / "memory")
                parts["memory"] = "memory"
            write_pipeline_json(tmp, self.kind, self.defaults, self.info, **parts)
        return path

    @property
    def image_size(self) -> int:
        return (self.upsamplers[-1] if self.upsamplers else self.decoder).model.config.image_size

    def components(self) -> dict[str, Component]:
        return {"clip": self.clip, "prior": self.prior, "decoder": self.decoder, **{f"upsampler-{u.model.config.image_size}": u for u in self.upsamplers},
                **({"reader": self.reader} if self.reader is not None else {})}

    # ---- stages --------------------------------------------------------------------------------
    def encode_text(self, prompts: list[str]):
        """Prompts -> (TextEncoding, CLIP text embeddings (B, E)). Empty prompts are an error;
        over-long ones are truncated with a warning."""
        enc = get_text_encoder(self.text_max_length).encode(prompt_list(prompts))
        with torch.no_grad():
            text_embed = self.clip.model.encode_text(enc.tokens, enc.mask, enc.pooled)
        return enc, text_embed

    @torch.no_grad()
    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        """PIL images -> (N, E) CLIP image embeddings."""
        size = self.clip.model.config.image_size
        arr = np.stack([np.asarray(_square_rgb(im).resize((size, size), Image.BOX)) for im in images])
        return self.clip.model.encode_image(to_model_range(arr))

    def decode(self, embeds: torch.Tensor, enc=None, *, options: SamplingOptions, generator: torch.Generator, progress: Callable | None = None,
               use_embed: bool = True, target: torch.Tensor | None = None) -> torch.Tensor:
        """Image embeddings (B, E) -> images (B, 3, S, S) in [-1, 1], through the decoder and upsamplers.

        With options.decoder_candidates = k > 1, the decoder draws k images per embedding and the
        best of them (see best_candidates) is upsampled."""
        k = options.decoder_candidates
        rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
        kw = {"tokens": rep(enc.tokens), "token_mask": rep(enc.mask)} if enc is not None and self.decoder.model.config.text_dim else {}
        candidates = generator.repeat(k, "decoder candidates") if k > 1 and isinstance(generator, RowGenerators) else generator
        x = run_decoder(self.decoder, rep(embeds), **kw, steps=options.decoder_steps, guidance=options.decoder_guidance, text_guidance=options.decoder_text_guidance,
                        sampler=options.sampler, spacing=options.spacing, threshold=options.threshold, generator=candidates, progress=progress, use_embed=use_embed)
        if k > 1:
            x = self.best_candidates(x.view(len(embeds), k, *x.shape[1:]), embeds if target is None else target, enc)
        for up in self.upsamplers:
            x = run_upsampler(up, x, steps=options.upsampler_steps, sampler=options.sampler_of("upsampler"), spacing=options.spacing,
                              threshold=options.upsampler_threshold, generator=generator, progress=progress)
        return x

    @torch.no_grad()
    def best_candidates(self, candidates: torch.Tensor, target: torch.Tensor, enc=None) -> torch.Tensor:
        """Images (B, k, 3, S, S) in [-1, 1] -> (B, 3, S, S): per row, the candidate whose CLIP
        image embedding has the largest cosine with target (B, E). With a matching head and a
        caption `enc`: the largest head logit plus CLIP logit (scale * cosine), BLIP's ITM + ITC;
        on shapes that ranked better than either alone (docs/results/unclip.md)."""
        b, k = candidates.shape[:2]
        clip, images = self.clip.model, candidates.flatten(0, 1)
        tokens = clip.image_tokens(images)
        cosines = (clip.embed_image_tokens(tokens).view(b, k, -1) * target[:, None]).sum(-1)
        if enc is None or not clip.has_match_head:
            return keep_best(candidates, cosines)
        head = clip.match_logits(images, enc.tokens.repeat_interleave(k, 0), enc.mask.repeat_interleave(k, 0), image_tokens=tokens).view(b, k)
        return keep_best(candidates, head + clip.scale * cosines)

    # ---- public calls --------------------------------------------------------------------------
    def __call__(self, prompts: str | list[str], *, num_images: int = 1, seed: int = 0, first_index: int = 0, progress: Callable | None = None,
                 row_seeds: Sequence[int] | None = None,
                 image_embedding: str | torch.Tensor = "prior", **options: Any) -> list[Image.Image]:
        """Generate `num_images` per prompt; returns PIL images, prompt-major. Same seed, same images.

        An image's noise depends only on (seed, its prompt's index, its sample index), never on
        the other prompts of the call: prompt i of this call has index first_index + i, so a
        long list generated in batches (pass each batch's offset) gives the images of one call.
        row_seeds, one per image (prompt-major), replace those seeds (see generate_requests).

        image_embedding picks what the decoder is conditioned on: "prior" (unCLIP), "text" (the
        CLIP text embedding in place of an image embedding), "none" (the text tokens alone), or a
        tensor (len(prompts) * num_images, E) of given image embeddings, prompt-major (say, of
        real images: what a perfect prior would give)."""
        given = image_embedding if isinstance(image_embedding, torch.Tensor) else None
        if given is None and image_embedding not in IMAGE_EMBEDDINGS:
            raise InputError(f"image_embedding must be one of {', '.join(IMAGE_EMBEDDINGS)} or a tensor, got {image_embedding!r}")
        check_request(seed, num_images, first_index)
        opts = self.defaults.updated(**options)
        prompts = self.read(prompt_list(prompts), opts)
        enc, text_embed = self.encode_text(prompts)
        if opts.caption_memory:
            if self.memory is None:
                raise InputError("caption-memory needs a pipeline with a caption memory (t2i assemble --caption-memory DATA)")
            text_embed = self.memory.blend(enc.pooled, text_embed, opts.caption_memory, embed_text=lambda captions: self.encode_text(captions)[1])
            nearest = self.memory.nearest_captions(enc.pooled)
            if nearest is not None and nearest != list(prompts):  # prior and decoder read the nearest captions' tokens
                enc = self.encode_text(nearest)[0]
        rep = lambda x: x.repeat_interleave(num_images, dim=0)  # noqa: E731
        enc = type(enc)(rep(enc.tokens), rep(enc.mask), rep(enc.pooled))
        generator = RowGenerators.for_call(seed, len(prompts), num_images, first_index, row_seeds)
        if given is not None:
            if given.shape != (len(prompts) * num_images, text_embed.shape[1]):
                raise InputError(f"given image embeddings must have shape ({len(prompts) * num_images}, {text_embed.shape[1]}), got {tuple(given.shape)}")
            embeds = F.normalize(given.float(), dim=-1)
        elif image_embedding == "prior":
            embeds = run_prior(self.prior, rep(text_embed), enc.tokens, enc.mask, steps=opts.prior_steps, guidance=opts.prior_guidance,
                               candidates=opts.prior_candidates, sampler=opts.sampler_of("prior"), spacing=opts.spacing, generator=generator, progress=progress)
        else:
            embeds = rep(text_embed)
        return to_pil(self.decode(embeds, enc, options=opts, generator=generator, progress=progress, use_embed=given is not None or image_embedding != "none", target=rep(text_embed)))

    def variations(self, image: Image.Image, *, num_images: int = 1, seed: int = 0, **options: Any) -> list[Image.Image]:
        """DALL-E 2's image variations: decode new images from the CLIP embedding of `image`."""
        check_request(seed, num_images)
        if not isinstance(image, Image.Image):
            raise InputError(f"variations take a PIL image (open a file with PIL.Image.open), got {type(image).__name__}")
        opts = self.defaults.updated(**options)
        embeds = self.embed_images([image]).repeat(num_images, 1)
        return to_pil(self.decode(embeds, None, options=opts, generator=RowGenerators.for_images(seed, 1, num_images)))

    def interpolate(self, image_a: Image.Image, image_b: Image.Image, *, steps: int = 5, seed: int = 0, **options: Any) -> list[Image.Image]:
        """Images decoded along the spherical path between two images' CLIP embeddings."""
        check_request(seed, 1)
        if not all(isinstance(im, Image.Image) for im in (image_a, image_b)):
            raise InputError("interpolate takes two PIL images (open files with PIL.Image.open)")
        if not isinstance(steps, int) or steps < 2:
            raise InputError("interpolation needs at least 2 steps")
        opts = self.defaults.updated(**options)
        a, b = self.embed_images([image_a, image_b])
        w = torch.linspace(0, 1, steps)[:, None]
        omega = torch.arccos((a * b).sum().clamp(-1 + 1e-6, 1 - 1e-6))
        z = (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / torch.sin(omega)
        same_noise = RowGenerators([row_seed(seed, 0, 0)] * steps)  # every step from the same noise: the path is smooth
        return to_pil(self.decode(F.normalize(z, dim=-1), None, options=opts, generator=same_noise))


def _square_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    image = image.convert("RGB")
    w, h = image.size
    s = min(w, h)
    return image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
