"""Imagen's pipeline: caption -> frozen MiniLM token states -> base UNet (32x32) -> super-resolution
UNets, every one of them reading the token states (cross-attention) and their pooled mean (added
to the time embedding).

A pipeline folder holds a component folder per UNet and `pipeline.json`:

    {"format_version": 1, "pipeline": "imagen", "base": "base", "base_experts": ["base-from-900"], "super_res": ["sr-64"], "defaults": {...}}

The base may have high-noise experts (eDiff-I): base UNets trained on the noisiest diffusion
steps alone (`t2i train imagen-base --set options.min_step=900`), which sample those steps.

A pipeline assembled with `--reader RUN` holds a scene reader (t2i/pipelines/scene_reading.py):
a shapes prompt that is not a caption is drawn as the caption of the scene read from it, as in
unCLIP.

A pipeline assembled with `--caption-memory DATA` keeps the data's captions (the "memory" part);
with the sampling option caption_memory w > 0 each UNet's conditional prediction is (1 - w) the
prompt's and w that of its nearest caption by the frozen sentence encoder (see steered in
t2i/pipelines/sampling.py). On data whose prompts name one thing it has (emoji), an everyday
wording then draws what the model learnt from the thing's name.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from t2i.checkpoint import CheckpointError, Component, atomic_folder, load_component, resolve_component, write_component_files
from t2i.diffusion.noise import RowGenerators, check_request
from t2i.errors import InputError
from t2i.imagen.options import ImagenSamplingOptions
from t2i.pipelines.base import Pipeline, assembled_reader, folder_reader, part_folder, preset_defaults, prompt_list, read_pipeline_json, to_pil, write_pipeline_json
from t2i.pipelines.caption_memory import CaptionMemory, assembled_memory, check_memory
from t2i.pipelines.loading import is_pipeline_folder
from t2i.pipelines.sampling import check_experts, diffusion_of, padded_tokens, run_upsampler, sample_unet, text_conditions
from t2i.pipelines.scene_reading import check_reader

DEFAULT_MAX_LENGTH = 32


class ImagenPipeline(Pipeline):
    kind, options_class, upsampling_attribute = "imagen", ImagenSamplingOptions, "super_res"

    def __init__(self, *, base: Component, super_res: list[Component] | None = None, defaults: ImagenSamplingOptions | None = None,
                 info: dict | None = None, base_experts: list[Component] | None = None, memory: CaptionMemory | None = None,
                 reader: Component | None = None) -> None:
        self.base, self.super_res, self.memory, self.reader = base, list(super_res or []), memory, reader
        check_reader(reader)
        self.base_experts = sorted(base_experts or [], key=lambda e: int(e.settings.get("min_step", 0)))
        check_experts(base, self.base_experts)
        self.defaults = defaults or ImagenSamplingOptions()
        self.info = info or {}
        check_memory(memory, self.defaults)
        text_dim = base.model.config.text_dim
        if not text_dim or base.model.config.low_res:
            raise CheckpointError("an Imagen base UNet reads text alone (text_dim > 0, no low_res)")
        size = base.model.config.image_size
        for sr in self.super_res:
            cfg = sr.model.config
            if not cfg.low_res or cfg.text_dim != text_dim:
                raise CheckpointError(f"an Imagen super-resolution UNet reads a low-res image and the same {text_dim}-d token states")
            if int(sr.settings.get("low_res_size", size)) != size:
                raise CheckpointError(f"the {cfg.image_size}x{cfg.image_size} super-resolution UNet upsamples {sr.settings.get('low_res_size')}x, "
                                      f"and the stage before it makes {size}x{size}")
            size = cfg.image_size
        self.text_max_length = int(base.settings.get("max_length", DEFAULT_MAX_LENGTH))
        self.text_layers = int(base.settings.get("text_layers", 0))
        if any(int(c.settings.get(key, default)) != int(base.settings.get(key, default)) for c in [*self.base_experts, *self.super_res]
               for key, default in (("text_layers", 0), ("max_length", DEFAULT_MAX_LENGTH))):
            raise CheckpointError("the UNets of an Imagen cascade read token states from different MiniLM depths or caption lengths")

    @classmethod
    def assemble(cls, stages: dict[str, list[str | Path]], *, preset: dict[str, Any] | None = None, caption_memory: str | None = None,
                 memory_dims: int = 0, info: dict[str, Any] | None = None) -> ImagenPipeline:
        """A pipeline from trained stages: {"imagen-base": [RUN, ...], "imagen-sr": [RUN, ...], "reader": [RUN]} (run or
        component folders, super-resolution lowest resolution first). One imagen-base is trained
        on every diffusion step; any others are its high-noise experts (trained with
        options.min_step). A preset's "imagen-pipeline" (or "pipeline") section gives the
        default sampling options; caption_memory names the data whose captions the memory keeps,
        memory_dims the dimensions of its retrieval keys (0: all of the sentence encoder's)."""
        bases = [load_component(resolve_component(p), role="imagen-base") for p in stages.get("imagen-base", [])]
        whole = [b for b in bases if not b.settings.get("min_step")]
        if len(whole) != 1:
            raise InputError(f"an imagen pipeline needs one imagen-base trained on every diffusion step (beside any high-noise experts); got {len(whole)}")
        super_res = [load_component(resolve_component(p), role="imagen-sr") for p in stages.get("imagen-sr", [])]
        defaults = preset_defaults(preset, cls.kind, cls.options_class)
        memory = assembled_memory(caption_memory, defaults, dims=memory_dims, max_length=int(whole[0].settings.get("max_length", DEFAULT_MAX_LENGTH)))
        return cls(base=whole[0], base_experts=[b for b in bases if b.settings.get("min_step")], super_res=super_res,
                   defaults=defaults, info=info, memory=memory, reader=assembled_reader(stages))

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, path: str | Path) -> ImagenPipeline:
        path = Path(path)
        spec, defaults = read_pipeline_json(path, cls.kind, cls.options_class)
        base = load_component(part_folder(path, spec.get("base", "base")), role="imagen-base")
        return cls(base=base,
                   base_experts=[load_component(part_folder(path, p), role="imagen-base", shared_with=base) for p in spec.get("base_experts", [])],
                   super_res=[load_component(part_folder(path, p), role="imagen-sr") for p in spec.get("super_res", [])],
                   defaults=defaults, info=spec.get("info", {}), memory=CaptionMemory.load(part_folder(path, spec["memory"])) if spec.get("memory") else None,
                   reader=folder_reader(path, spec))

    def save(self, path: str | Path, *, dtype: torch.dtype = torch.float16, dtypes: Mapping[str, torch.dtype] | None = None, overwrite: bool = False) -> Path:
        """Write the whole pipeline atomically (fp16 weights by default, `dtypes` per component by
        name); an existing `path` is replaced only with overwrite=True, and only if it is a pipeline folder."""
        path = Path(path)
        parts, storage = self.components(), self.storage_dtypes(dtype, dtypes)
        with atomic_folder(path, overwrite=overwrite, owned=is_pipeline_folder) as tmp:
            for name, comp in parts.items():
                (tmp / name).mkdir()
                # an expert fine-tuned from the base in a few layers (options.train_only) stores those alone
                write_component_files(tmp / name, comp, dtype=storage[name], shared_with=self.base if name.startswith("base-from-") else None)
            experts = [name for name in parts if name.startswith("base-from-")]
            extra = {"base_experts": experts} if experts else {}
            if self.memory is not None:
                self.memory.save(tmp / "memory")
                extra["memory"] = "memory"
            if self.reader is not None:
                extra["reader"] = "reader"
            write_pipeline_json(tmp, self.kind, self.defaults, self.info, base="base", **extra, super_res=[name for name in parts if name.startswith("sr-")])
        return path

    @property
    def image_size(self) -> int:
        """The side of the images a call makes at the default options."""
        running = self.super_res[: self.defaults.sr_stages]
        return (running[-1] if running else self.base).model.config.image_size

    def components(self) -> dict[str, Component]:
        return {"base": self.base, **{f"base-from-{e.settings['min_step']}": e for e in self.base_experts},
                **{f"sr-{sr.model.config.image_size}": sr for sr in self.super_res}, **({"reader": self.reader} if self.reader is not None else {})}

    # ---- sampling ------------------------------------------------------------------------------
    def encode_text(self, prompts: list[str], phrase_mix: float = 0.0):
        """Prompts -> the frozen MiniLM's TextEncoding (token states, mask, pooled), at the depth the
        UNets were trained on; phrase_mix > 0 mixes in each listed phrase encoded alone."""
        from t2i.text.encoder import get_text_encoder
        from t2i.text.phrases import mix_phrase_states

        encoder, prompts = get_text_encoder(self.text_max_length, self.text_layers), prompt_list(prompts)
        return mix_phrase_states(encoder, prompts, encoder.encode(prompts), phrase_mix)

    def nearest_caption_text(self, prompts: list[str], weight: float, phrase_mix: float = 0.0, pooled=None):
        """The TextEncoding of each prompt's nearest caption in the memory, or None when the weight
        is 0 or every prompt is its own nearest caption. The memory is queried with the full-depth
        sentence embedding its keys were made with: `pooled` where the caller has it."""
        from t2i.text.encoder import get_text_encoder

        if not weight:
            return None
        if self.memory is None:
            raise InputError("caption-memory needs a pipeline with a caption memory (t2i assemble --caption-memory DATA)")
        if pooled is None:
            pooled = get_text_encoder(self.text_max_length).encode(prompts).pooled
        nearest = self.memory.nearest_captions(pooled)
        if nearest is None:
            raise CheckpointError("this caption memory keeps no caption strings, which an imagen pipeline reads")
        return None if nearest == list(prompts) else self.encode_text(nearest, phrase_mix)

    def __call__(self, prompts: str | list[str], *, num_images: int = 1, seed: int = 0, first_index: int = 0, progress: Callable | None = None,
                 row_seeds: Sequence[int] | None = None,
                 **options: Any) -> list:
        """Generate `num_images` per prompt; PIL images, prompt-major. An image's noise depends only
        on (seed, its prompt's index first_index + i, its sample index), as in every pipeline;
        row_seeds, one per image (prompt-major), replace those seeds (see generate_requests)."""
        check_request(seed, num_images, first_index)
        opts = self.defaults.updated(**options)
        prompts = self.read(prompt_list(prompts), opts)
        enc = self.encode_text(prompts, opts.phrase_mix)
        # phrase mixing leaves the pooled embedding as it was, so at full depth it is the memory's query
        near = self.nearest_caption_text(prompts, opts.caption_memory, opts.phrase_mix, pooled=enc.pooled if self.text_layers == 0 else None)
        length = max(enc.tokens.shape[1], near.tokens.shape[1] if near is not None else 0)
        rep = lambda t, m: tuple(x.repeat_interleave(num_images, 0) for x in padded_tokens(t, m, length))  # noqa: E731
        tokens, mask = rep(enc.tokens, enc.mask)
        toward = rep(near.tokens, near.mask) if near is not None else None
        generator = RowGenerators.for_call(seed, len(prompts), num_images, first_index, row_seeds)
        cond, null = text_conditions(tokens, mask)
        x = sample_unet(self.base, cond, null=null, guidance=opts.base_guidance, steps=opts.base_steps, sampler=opts.sampler, spacing=opts.spacing,
                        threshold=opts.base_threshold, generator=generator, progress=progress,
                        experts=self.base_experts if opts.base_experts == "on" else (),
                        toward=text_conditions(*toward)[0] if toward else None, toward_weight=opts.caption_memory)
        for sr in self.super_res[: opts.sr_stages]:
            level = round(opts.sr_aug_level * (diffusion_of(sr).num_steps - 1))
            x = run_upsampler(sr, x, tokens, mask, steps=opts.sr_steps, guidance=opts.sr_guidance, aug_level=level, sampler=opts.sampler_of("sr"), spacing=opts.spacing,
                              threshold=opts.sr_threshold, generator=generator, progress=progress, toward_tokens=toward, toward_weight=opts.caption_memory)
        return to_pil(x)
