"""What every system's pipeline shares, so that a system's own pipeline is only its chain of stages.

- sampling options: a frozen dataclass with `updated(**overrides)` (t2i/pipelines/options.py);
- prompts: one string or a list of non-empty strings (`prompt_list`);
- noise per image (t2i.diffusion.noise): a subclass's __call__ takes `first_index` and seeds
  each image from (seed, first_index + prompt, sample), or takes the seed of each row;
- batching (`generate`): a long list in batches, with the same images as one call; and several
  requests with their own seeds in one call (`generate_requests`, the server's batching);
- the pipeline folder's pipeline.json: format version, kind, default options, info;
- a scene reader (t2i/pipelines/scene_reading.py), which any system's pipeline may hold: `read`
  gives the words its stages draw, and `assembled_reader` / `folder_reader` load it.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from t2i.checkpoint import FORMAT_VERSION, CheckpointError, Component, load_component, read_versioned_json, resolve_component
from t2i.config import ConfigError, config_from_dict, config_to_dict
from t2i.data.dataset import to_uint8
from t2i.diffusion.noise import image_seeds
from t2i.errors import InputError
from t2i.pipelines.options import SamplingOptionsBase
from t2i.pipelines.scene_reading import read_prompts


def prompt_list(prompts: str | list[str]) -> list[str]:
    """One prompt or a list of them -> a non-empty list of non-blank strings."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        raise InputError("prompts must be a string or a list of strings")
    if not prompts:
        raise InputError("no prompts given")
    for i, prompt in enumerate(prompts):
        if not prompt.strip():
            raise InputError(f"empty prompt (prompt {i} is empty or whitespace)")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # bytes the shell could not decode arrive as lone surrogates
            raise InputError(f"prompt {i} is not valid text (undecodable bytes: {prompt.encode('utf-8', 'backslashreplace').decode()!r})") from None
    return list(prompts)


class Pipeline:
    """Base of every system's pipeline. A subclass sets `kind` (its registry name) and
    `options_class`, and implements __call__(prompts, *, num_images, seed, first_index, **options)
    -> PIL images, prompt-major, plus from_folder / save / assemble, `defaults` (its options),
    `info`, `image_size` and components() (its parts by name)."""

    kind: str = ""
    options_class: type = SamplingOptionsBase
    upsampling_attribute: str = ""  # the attribute holding its upsampling stages, lowest resolution first
    reader: Component | None = None  # a scene reader, where the pipeline has one
    text_max_length: int = 32  # tokens of a prompt its stages read

    def read(self, prompts: list[str], options: Any = None) -> list[str]:
        """The words the stages read for each prompt: with a scene reader, the caption of the scene
        read from it (when sure enough: --scene-reading), else the prompt itself."""
        return read_prompts(self.reader, prompts, (options or self.defaults).scene_reading, self.text_max_length)

    def upsampling_stages(self) -> list:
        return list(getattr(self, self.upsampling_attribute)) if self.upsampling_attribute else []

    def without_upsampling(self) -> Pipeline:
        """A shallow copy that stops at the first stage: its images, with the same seeds, are the
        ones the upsamplers of this pipeline would get."""
        return self.with_upsampling(0)

    def with_upsampling(self, count: int) -> Pipeline:
        """A shallow copy that keeps only its first `count` upsampling stages (same seeds, same images
        up to there)."""
        clone = copy.copy(self)
        if self.upsampling_attribute:
            setattr(clone, self.upsampling_attribute, self.upsampling_stages()[:count])
        return clone

    def storage_dtypes(self, dtype: torch.dtype, dtypes: Mapping[str, torch.dtype] | None = None) -> dict[str, torch.dtype]:
        """Each component's weight storage for save(): `dtype`, except where `dtypes` names the
        component (say int8 for the upsamplers alone, to fit a size budget)."""
        names, dtypes = self.components(), dtypes or {}
        unknown = sorted(set(dtypes) - set(names))
        if unknown:
            raise InputError(f"no component {unknown[0]!r} in this pipeline (it has {', '.join(names)})")
        return {name: dtypes.get(name, dtype) for name in names}

    def __call__(self, prompts: str | list[str], *, num_images: int = 1, seed: int = 0, first_index: int = 0, **options: Any) -> list[Image.Image]:
        raise NotImplementedError

    def generate(self, prompts: list[str], *, num_images: int = 1, seed: int = 0, batch_size: int = 32, per_image: dict[str, torch.Tensor] | None = None,
                 **options: Any) -> Iterator[tuple[int, int, Image.Image]]:
        """See generate_batches."""
        return generate_batches(self, prompts, num_images=num_images, seed=seed, batch_size=batch_size, per_image=per_image, **options)


def generate_batches(generate: Callable[..., list[Image.Image]], prompts: list[str], *, num_images: int = 1, seed: int = 0, batch_size: int = 32,
                     per_image: dict[str, torch.Tensor] | None = None, **options: Any) -> Iterator[tuple[int, int, Image.Image]]:
    """(prompt index, sample index, image) for every image, computed `batch_size` images at a time
    (at least one prompt per batch) by `generate` (a pipeline, or anything called like one): the
    images of one call, whatever the batch size. per_image: options with one row per image,
    prompt-major (say, given image embeddings), handed to each batch as its rows."""
    prompts = prompt_list(prompts)
    if num_images < 1 or batch_size < 1:
        raise InputError(f"number of images and batch size must be >= 1, got {num_images} and {batch_size}")
    per_batch = max(1, batch_size // num_images)
    for start in range(0, len(prompts), per_batch):
        chunk = prompts[start : start + per_batch]
        rows = slice(start * num_images, (start + len(chunk)) * num_images)
        given = {name: value[rows] for name, value in (per_image or {}).items()}
        images = generate(chunk, num_images=num_images, seed=seed, first_index=start, **options, **given)
        for i, image in enumerate(images):
            yield start + i // num_images, i % num_images, image


def generate_requests(pipe: Callable[..., list[Image.Image]], requests: Sequence[tuple[str, int, int]], **options: Any) -> list[list[Image.Image]]:
    """Several requests (prompt, number of images, seed), each as a call of its own would draw
    it (`pipe([prompt], num_images=n, seed=seed)`), in one pipeline call: one batch for all."""
    prompts = [prompt for prompt, n, _ in requests for _ in range(n)]
    seeds = [s for _, n, seed in requests for s in image_seeds(seed, n)]
    images = pipe(prompts, num_images=1, row_seeds=seeds, **options)
    out, start = [], 0
    for _, n, _ in requests:
        out.append(images[start : start + n])
        start += n
    return out


def to_pil(x: torch.Tensor) -> list[Image.Image]:
    """Images (B, 3, H, W) in [-1, 1] -> PIL images."""
    return [Image.fromarray(a) for a in to_uint8(x)]


def preset_defaults(preset: dict[str, Any] | None, kind: str, options_class: type):
    """A preset's default sampling options for a `kind` pipeline: its "KIND-pipeline" section, else
    its "pipeline" section (a preset of one system), else the options' own defaults."""
    preset = preset or {}
    key = f"{kind}-pipeline" if f"{kind}-pipeline" in preset else "pipeline"
    return config_from_dict(options_class, preset.get(key, {}), where=key)


def write_pipeline_json(folder: Path, kind: str, defaults: Any, info: dict[str, Any], **parts: Any) -> None:
    """pipeline.json: the format version, the system, its parts (folder names), default options, info."""
    spec = {"format_version": FORMAT_VERSION, "pipeline": kind, **parts, "defaults": config_to_dict(defaults), "info": info}
    (Path(folder) / "pipeline.json").write_text(json.dumps(spec, indent=2))


def read_pipeline_json(path: Path, kind: str, options_class: type) -> tuple[dict[str, Any], Any]:
    """A pipeline folder's spec and its default options, checked: the folder is a `kind` pipeline."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model folder")
    spec = read_versioned_json(path / "pipeline.json", what="pipeline")
    if spec.get("pipeline") != kind:
        raise CheckpointError(f"{path}: a {spec.get('pipeline')!r} pipeline, not {kind}")
    try:
        defaults = config_from_dict(options_class, spec.get("defaults", {}), where=f"{path}/pipeline.json defaults")
    except ConfigError as e:  # already names the file and key
        raise CheckpointError(str(e)) from None
    except InputError as e:  # a value out of range, from the options class itself
        raise CheckpointError(f"{path}/pipeline.json defaults: {e}") from None
    return spec, defaults


def assembled_reader(stages: dict[str, list[str | Path]]) -> Component | None:
    """The scene reader among a pipeline's trained stages (a run or component folder), if any."""
    runs = stages.get("reader", [])
    if len(runs) > 1:
        raise InputError("a pipeline takes at most one scene reader")
    return load_component(resolve_component(runs[0]), role="reader") if runs else None


def folder_reader(path: Path, spec: dict[str, Any]) -> Component | None:
    """The scene reader a pipeline folder's pipeline.json names, if any."""
    return load_component(part_folder(path, spec["reader"]), role="reader") if spec.get("reader") else None


def part_folder(pipeline: Path, name: object) -> Path:
    """The folder of a part that pipeline.json names: inside the pipeline folder, never elsewhere
    (a "../../elsewhere/decoder" entry would load a component the folder does not hold)."""
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{pipeline}/pipeline.json: a part is named {name!r}, not a folder name")
    root = Path(pipeline).resolve()
    path = (root / name).resolve()
    if path == root or root not in path.parents:
        raise CheckpointError(f"{pipeline}/pipeline.json: part {name!r} lies outside the pipeline folder")
    return path
