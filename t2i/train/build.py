"""Turn a preset (a JSON file with one section per stage) and a dataset into a ready Trainer.

A preset section looks like
    {"model": {...}, "diffusion": {...}, "options": {...}, "train": {...}}
where `model` is the component's config, `diffusion` its schedule/objective, `options` the
stage's own knobs (guidance dropout rates, augmentation levels) and `train` a TrainConfig.
"""
from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import torch

from t2i.checkpoint import CheckpointError, Component, build_model, load_component, load_weights
from t2i.config import ConfigError, config_from_dict, read_json
from t2i.text.augment import templates_for
from t2i.train.trainer import TrainConfig, Trainer

STAGES = ("clip", "prior", "decoder", "upsampler")
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
SECTION_KEYS = {"model", "diffusion", "options", "train"}
# each stage's options and the kind of value each takes: "rate" a number in [0, 1], "scale" a
# number >= 0, "count" an integer >= 0, "flag" true or false
# caption_augment: the chance that a drawn caption is replaced by a rephrasing (t2i.text.augment)
OPTIONS = {
    "clip": {"max_length": "count", "hard_negatives": "flag", "match_only": "flag", "text_only": "flag", "caption_augment": "rate"},
    "prior": {"drop_text": "rate", "max_length": "count", "caption_augment": "rate"},
    "decoder": {"drop_embed": "rate", "drop_text": "rate", "embed_noise": "scale", "max_length": "count", "caption_augment": "rate"},
    "upsampler": {"low_res_size": "count", "max_aug_level": "count", "sample_aug_level": "count", "sample_start_level": "count"},
}
OPTION_KINDS = {"rate": "a number from 0 to 1", "scale": "a number >= 0", "count": "an integer >= 0", "flag": "true or false"}


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def read_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (see `presets()`) or a JSON file path."""
    path = Path(name_or_path)
    if not path.exists():
        path = PRESET_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ConfigError(f"no preset or config file '{name_or_path}' (presets: {', '.join(presets())})")
    return read_json(path)


def stage_section(preset: dict[str, Any], stage: str) -> dict[str, Any]:
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}' (expected one of {', '.join(STAGES)})")
    section = preset.get(stage)
    if not isinstance(section, dict):
        raise ConfigError(f"the config has no '{stage}' section")
    unknown = sorted(set(section) - SECTION_KEYS)
    if unknown:
        raise ConfigError(f"{stage}: unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(SECTION_KEYS))})")
    options = section.get("options", {})
    bad = sorted(set(options) - set(OPTIONS[stage]))
    if bad:
        raise ConfigError(f"{stage}.options: unknown option(s) {', '.join(bad)}")
    for name, value in options.items():
        if not _option_ok(OPTIONS[stage][name], value):
            raise ConfigError(f"{stage}.options.{name} must be {OPTION_KINDS[OPTIONS[stage][name]]}, got {value!r}")
    return copy.deepcopy(section)


def _option_ok(kind: str, value: Any) -> bool:
    if kind == "flag":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        return False
    return {"rate": value <= 1, "scale": math.isfinite(value), "count": isinstance(value, int)}[kind]


def run_record(run_dir: str | Path, stage: str) -> dict[str, Any] | None:
    """The settings a run in `run_dir` was started with (its run.json) as a one-stage preset, its
    `train` part the run's whole TrainConfig; None when the folder holds no record. A resumed
    run continues from these rather than from today's preset, so what --set changed at the
    start stays changed."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return None
    record = read_json(path)
    if record.get("stage") != stage:
        raise ConfigError(f"{run_dir} holds a {record.get('stage')} run, not a {stage} run")
    if not isinstance(record.get("section"), dict) or not isinstance(record.get("train"), dict):
        raise ConfigError(f"{path}: not a training run's record (no 'section' or 'train')")
    return {stage: {**record["section"], "train": record["train"]}}


def override_section(preset: dict[str, Any], stage: str, assignments: list[str]) -> dict[str, Any]:
    """A copy of `preset` with "PART.KEY=VALUE" assignments applied to the stage's section, e.g.
    "options.drop_text=0.1" or "model.base_channels=64". VALUE is read as JSON (a bare word
    stays a string), so a run's recipe can differ from its preset without a new file."""
    out = copy.deepcopy(preset)
    if not assignments:
        return out
    section = out.get(stage)
    if not isinstance(section, dict):
        raise ConfigError(f"the config has no '{stage}' section")
    for text in assignments:
        key, sep, raw = text.partition("=")
        part, dot, name = key.strip().partition(".")
        if not sep or not dot or not name or "." in name:
            raise ConfigError(f"--set {text!r}: expected PART.KEY=VALUE with PART one of {', '.join(sorted(SECTION_KEYS))}")
        if part not in SECTION_KEYS:
            raise ConfigError(f"--set {text!r}: unknown part '{part}' (expected one of {', '.join(sorted(SECTION_KEYS))})")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if not isinstance(section.setdefault(part, {}), dict):
            raise ConfigError(f"{stage}.{part} in the config is not an object")
        section[part][name] = value
    return out


def make_trainer(stage: str, preset: dict[str, Any], *, data: str, out_dir: str | Path, clip: str | Path | None = None,
                 train_overrides: dict[str, Any] | None = None, init_from: str | Path | None = None, progress: bool = True) -> Trainer:
    """Build the stage's model (fresh, or warm-started from `init_from`), its data and the Trainer."""
    from t2i.data.sources import load_dataset
    from t2i.train import stages as S

    section = stage_section(preset, stage)
    train = {**section.get("train", {}), **{k: v for k, v in (train_overrides or {}).items() if v is not None}}
    train_config = config_from_dict(TrainConfig, train, where=f"{stage}.train")
    options = section.get("options", {})
    diffusion = section.get("diffusion", {})
    model_cfg = dict(section.get("model", {}))
    clip_comp = None
    if stage in ("prior", "decoder"):
        if clip is None:
            raise ConfigError(f"training the {stage} needs a trained CLIP: pass --clip RUN_OR_FOLDER")
        clip_comp = load_component(resolve_component(clip), role="clip")
        model_cfg["embed_dim"] = clip_comp.model.config.embed_dim  # the stages must agree; take it from CLIP
    kind = {"clip": "clip", "prior": "prior", "decoder": "unet", "upsampler": "unet"}[stage]
    settings: dict[str, Any] = {}
    if diffusion:
        settings["diffusion"] = diffusion
    if stage == "prior":
        settings["embed_scale"] = math.sqrt(model_cfg["embed_dim"])
    if stage == "upsampler":
        settings.update(low_res_size=int(options.get("low_res_size", 32)), max_aug_level=int(options.get("max_aug_level", 0)))
        settings.update(sampling_settings(options))
    torch.manual_seed(train_config.seed)  # the same seed, the same starting weights
    component = Component(model=build_model(kind, model_cfg), role=stage, settings=settings)
    if init_from is not None:
        # a model that adds parts to the one it starts from (e.g. model.text_positions) keeps
        # those parts' own initialisation
        new = load_weights(component.model, resolve_component(init_from) / "model.safetensors", allow_missing=True)
        if new:
            warnings.warn(f"--init-from {init_from}: {len(new)} tensor(s) not in it keep their fresh initial values: {', '.join(new)}", stacklevel=2)

    max_length = int(options.get("max_length", 32))
    captions = {"caption_augment": float(options.get("caption_augment", 0.0)), "templates": templates_for(data)}
    if stage == "clip":
        size = component.model.config.image_size
        train_set = load_dataset(data, size=size, split="train")
        # user data has no held-out part: retrieval is then measured on training pairs
        heldout = load_dataset(data, size=size, split="heldout") if data in ("emoji", "shapes") else None
        stage_obj = S.ClipStage(component, train_set, heldout=heldout, max_length=max_length,
                               hard_negatives=bool(options.get("hard_negatives", False)), match_only=bool(options.get("match_only", False)),
                               text_only=bool(options.get("text_only", False)), **captions)
    elif stage == "prior":
        stage_obj = S.PriorStage(component, clip_comp, load_dataset(data, size=clip_comp.model.config.image_size), drop_text=options.get("drop_text", 0.1),
                                 max_length=max_length, **captions)
    elif stage == "decoder":
        data_set = load_dataset(data, size=max(component.model.config.image_size, clip_comp.model.config.image_size))
        stage_obj = S.DecoderStage(component, clip_comp, data_set, drop_embed=options.get("drop_embed", 0.1), drop_text=options.get("drop_text", 0.5),
                                  embed_noise=float(options.get("embed_noise", 0.0)), max_length=max_length, **captions)
    else:
        stage_obj = S.UpsamplerStage(component, load_dataset(data, size=component.model.config.image_size))
    run_config = {"stage": stage, "data": data, "clip": str(clip) if clip else None, "init_from": str(init_from) if init_from else None,
                  "section": section, "train": json.loads(json.dumps(train))}
    return Trainer(stage_obj, train_config, out_dir, run_config=run_config, progress=progress)


UPSAMPLER_SAMPLING = ("sample_aug_level", "sample_start_level")


def sampling_settings(upsampler_options: dict[str, Any]) -> dict[str, int]:
    """The upsampler options that only matter at sampling time (assemble may update them)."""
    return {k: int(upsampler_options[k]) for k in UPSAMPLER_SAMPLING if k in upsampler_options}


def resolve_component(path: str | Path) -> Path:
    """A component folder, or a training run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / "config.json").exists():
        return path
    pointer = path / "latest"
    if pointer.exists():
        return path / "checkpoints" / pointer.read_text().strip()
    raise CheckpointError(f"{path}: neither a component folder nor a training run with a checkpoint")
