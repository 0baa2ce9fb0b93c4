"""The one place where systems are named: each system, its pipeline class, its stages.

`t2i train` (its stages, its --help, its --NEED flags), `t2i assemble` (a flag per stage), the
sampling flags of `t2i generate` and `t2i eval` (a flag per sampling option), make_trainer,
`t2i.load_pipeline` (a folder's pipeline kind -> its class) and the tests (tests/tiny.py,
tests/test_registry.py) read this table; a new system is a new package plus one entry here.
Entries name their code as "module:attribute" and are imported only when used, so any layer of
the library (and the CLI's `--help`, without importing torch) can read the table.

A training stage class (see t2i/train/stages.py) carries the rest of what a stage is:
`model_kind` (a component kind of t2i.checkpoint.MODEL_CLASSES), `options` (the typed dataclass of
its preset section's "options"), and `from_data` (its data and frozen inputs).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from t2i.errors import InputError


def resolve(target: str) -> Any:
    """'package.module:Attribute' -> the attribute."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class StageEntry:
    name: str  # `t2i train NAME`: one entry per name (a stage that several systems take is one entry listed by each)
    trainer: str  # the training stage class
    needs: tuple[str, ...] = ()  # stages whose trained component it reads (`--NAME RUN_OR_FOLDER`)
    help: str = ""
    optional: bool = False  # a pipeline of the system may leave it out (the scene reader: shapes only)

    def load(self) -> type:
        return resolve(self.trainer)


@dataclass(frozen=True)
class SystemEntry:
    name: str  # also the "pipeline" kind in a pipeline folder's pipeline.json
    title: str
    pipeline: str  # the pipeline class: from_folder(path), save(path), assemble(stages), __call__(prompts, ...)
    options: str  # its sampling options dataclass, in a module without torch (the CLI's flags)
    stages: tuple[StageEntry, ...]
    # the system's own evaluation beside the shared suite (`t2i eval ablation` and the report), if any:
    # a function (pipe, *, benchmark, samples, seed, limit, batch_size, out_dir, **options) -> {"rows": ...}
    ablation: str = ""
    ablation_title: str = ""

    def load_pipeline_class(self) -> type:
        return resolve(self.pipeline)

    def load_options_class(self) -> type:
        return resolve(self.options)


# a stage of no one system: it reads prompts, not images, and any system's pipeline may hold it
READER = StageEntry("reader", "t2i.train.reader_stage:ReaderStage", help="shapes prompt -> its scene, drawn as the stages' own caption", optional=True)

SYSTEMS: tuple[SystemEntry, ...] = (
    SystemEntry(
        name="unclip",
        title="unCLIP (DALL-E 2): CLIP, a diffusion prior, a decoder UNet, upsamplers",
        pipeline="t2i.unclip.pipeline:UnclipPipeline",
        options="t2i.unclip.options:SamplingOptions",
        ablation="t2i.unclip.ablation:run_ablation",
        ablation_title="Decoder conditioning ablation (DALL-E 2, section 5.1)",
        stages=(
            StageEntry("clip", "t2i.unclip.clip_stage:ClipStage", help="contrastive image and text encoders"),
            StageEntry("prior", "t2i.unclip.stages:PriorStage", needs=("clip",), help="caption -> CLIP image embedding"),
            StageEntry("decoder", "t2i.unclip.stages:DecoderStage", needs=("clip",), help="CLIP image embedding (+ caption) -> 32x32 image"),
            StageEntry("upsampler", "t2i.unclip.stages:UpsamplerStage", help="32x32 -> 64x64, with noise-conditioning augmentation"),
            READER,
        ),
    ),
    SystemEntry(
        name="imagen",
        title="Imagen: frozen MiniLM token states condition a cascade of text-conditioned UNets",
        pipeline="t2i.imagen.pipeline:ImagenPipeline",
        options="t2i.imagen.options:ImagenSamplingOptions",
        stages=(
            StageEntry("imagen-base", "t2i.imagen.stages:ImagenBaseStage", help="caption -> 32x32 image"),
            StageEntry("imagen-sr", "t2i.imagen.stages:ImagenSuperResStage", help="caption + low-res image -> 2x larger, with noise-conditioning augmentation"),
            READER,
        ),
    ),
)


def system(name: str) -> SystemEntry:
    for entry in SYSTEMS:
        if entry.name == name:
            return entry
    raise InputError(f"unknown system {name!r} (known: {', '.join(s.name for s in SYSTEMS)})")


def stage(name: str) -> tuple[SystemEntry, StageEntry]:
    """The stage's entry and the first system that lists it."""
    for entry in SYSTEMS:
        for candidate in entry.stages:
            if candidate.name == name:
                return entry, candidate
    raise InputError(f"unknown stage {name!r} (known: {', '.join(stage_names())})")


def sampling_options() -> dict[str, tuple[Any, list[str]]]:
    """Every sampling option of every system: name -> (its dataclass field, the systems that have it)."""
    from dataclasses import fields

    out: dict[str, tuple[Any, list[str]]] = {}
    for entry in SYSTEMS:
        for f in fields(entry.load_options_class()):
            out.setdefault(f.name, (f, []))[1].append(entry.name)
    return out


def stage_names() -> list[str]:
    return list(dict.fromkeys(s.name for entry in SYSTEMS for s in entry.stages))


def systems_of(name: str) -> list[str]:
    """The systems whose pipelines take the stage."""
    return [entry.name for entry in SYSTEMS if any(s.name == name for s in entry.stages)]
