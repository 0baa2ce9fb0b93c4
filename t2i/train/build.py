"""Turn a preset (a JSON file with one section per stage) and a dataset into a ready Trainer.

A preset section looks like
    {"model": {...}, "diffusion": {...}, "options": {...}, "train": {...}}
where `model` is the component's config, `diffusion` a DiffusionConfig, `options` the stage's
own knobs (t2i/train/options.py) and `train` a TrainConfig: all typed, an unknown key an error.
Which stages exist, and which class trains each, comes from the registry (t2i/registry.py).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from t2i import registry
from t2i.checkpoint import MODEL_CLASSES, Component, build_model, load_component, load_weights, resolve_component  # noqa: F401  (resolve_component: also imported from here)
from t2i.config import ConfigError, config_from_dict, config_to_dict, read_json
from t2i.diffusion.config import DiffusionConfig
from t2i.text.augment import templates_for
from t2i.train.trainer import TrainConfig, Trainer

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
SECTION_KEYS = {"model", "diffusion", "options", "train"}
STAGES = tuple(registry.stage_names())


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def read_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (see `presets()`) or a JSON file path."""
    path = Path(name_or_path)
    if not path.exists():
        path = PRESET_DIR / f"{name_or_path}.json"
        if not path.exists():
            raise ConfigError(f"no preset or config file '{name_or_path}' (presets: {', '.join(presets())})")
    preset = read_json(path)
    if not isinstance(preset, dict):
        raise ConfigError(f"{path}: expected an object with one section per stage")
    for stage in STAGES:  # a typo anywhere in the file is reported now, naming the file
        if stage in preset:
            stage_section(preset, stage, where=str(path))
    return preset


def default_preset(stage: str, data: str) -> str:
    """The preset a stage trains with when none is given: the data's own ("shapes"), else its
    system's for that data ("imagen-shapes"), else the same for emoji; the first that has the stage."""
    system = registry.stage(stage)[0].name
    names = presets()
    for name in (data, f"{system}-{data}", "emoji", f"{system}-emoji"):
        if name in names and stage in read_json(PRESET_DIR / f"{name}.json"):
            return name
    raise ConfigError(f"no preset has a '{stage}' section: pass --config")


def stage_class(stage: str) -> type:
    """The training stage class the registry names for `stage`."""
    return registry.stage(stage)[1].load()


def stage_section(preset: dict[str, Any], stage: str, *, where: str = "config") -> dict[str, Any]:
    """A copy of the stage's section, checked: every part and key known, every value usable."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage '{stage}' (expected one of {', '.join(STAGES)})")
    section = preset.get(stage)
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: no '{stage}' section")
    unknown = sorted(set(section) - SECTION_KEYS)
    if unknown:
        raise ConfigError(f"{where}: {stage}: unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(SECTION_KEYS))})")
    cls = stage_class(stage)
    config_from_dict(cls.options, section.get("options", {}), where=f"{where}: {stage}.options")
    config_from_dict(TrainConfig, section.get("train", {}), where=f"{where}: {stage}.train")
    model_fields = {f.name for f in dataclasses.fields(MODEL_CLASSES[cls.model_kind][1])}
    typos = sorted(set(section.get("model", {})) - model_fields)
    if typos:  # the values are checked when the model is built (some come from the stages it needs)
        raise ConfigError(f"{where}: {stage}.model: unknown option(s) {', '.join(typos)}")
    if "diffusion" in section:
        if not cls.diffusion:
            raise ConfigError(f"{where}: {stage}: a {stage} is not a diffusion model; remove its 'diffusion' part")
        config_from_dict(DiffusionConfig, section["diffusion"], where=f"{where}: {stage}.diffusion")
    return copy.deepcopy(section)


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


def make_trainer(stage: str, preset: dict[str, Any], *, data: str, out_dir: str | Path, train_overrides: dict[str, Any] | None = None,
                 init_from: str | Path | None = None, progress: bool = True, needs: dict[str, str | Path] | None = None) -> Trainer:
    """Build the stage's model (fresh, or warm-started from `init_from`), its data and the Trainer.
    `needs` gives the trained components the stage reads by stage name ({"clip": RUN})."""
    cls, entry = stage_class(stage), registry.stage(stage)[1]
    section = stage_section(preset, stage)
    train = {**section.get("train", {}), **{k: v for k, v in (train_overrides or {}).items() if v is not None}}
    train_config = config_from_dict(TrainConfig, train, where=f"{stage}.train")
    options = config_from_dict(cls.options, section.get("options", {}), where=f"{stage}.options")
    given = dict(needs or {})
    missing = [name for name in entry.needs if given.get(name) is None]
    if missing:
        raise ConfigError(f"training the {stage} needs a trained {missing[0]}: pass --{missing[0]} RUN_OR_FOLDER")
    loaded = {name: load_component(resolve_component(given[name]), role=name) for name in entry.needs}
    model_cfg = cls.model_config(dict(section.get("model", {})), loaded)
    settings: dict[str, Any] = {}
    if cls.diffusion:
        settings["diffusion"] = config_to_dict(config_from_dict(DiffusionConfig, section.get("diffusion", {}), where=f"{stage}.diffusion"))
    settings.update(cls.settings(options, model_cfg))
    if getattr(options, "min_step", 0):  # a high-noise expert: samplers refuse to run it alone (sample_chain)
        settings["min_step"] = options.min_step
    torch.manual_seed(train_config.seed)  # the same seed, the same starting weights
    component = Component(model=build_model(cls.model_kind, model_cfg), role=stage, settings=settings)
    if init_from is not None:
        # a model that adds parts to the one it starts from (e.g. model.text_positions) keeps
        # those parts' own initialisation; parts it lacks (an unCLIP decoder's CLIP-embedding
        # input, when an Imagen base starts from that decoder) are left out
        fit = load_weights(component.model, resolve_component(init_from) / "model.safetensors", warm_start=True)
        if fit.missing:
            warnings.warn(f"--init-from {init_from}: {len(fit.missing)} tensor(s) not in it keep their fresh initial values: {', '.join(fit.missing)}", stacklevel=2)
        if fit.unused:
            warnings.warn(f"--init-from {init_from}: {len(fit.unused)} of its tensor(s) have no place in this model and are left out: {', '.join(fit.unused)}", stacklevel=2)
    if getattr(options, "text_consistency", 0):  # the frozen model a fine-tune pulls toward (a resumed run: the one it started from)
        start = init_from or (read_json(Path(out_dir) / "run.json").get("init_from") if (Path(out_dir) / "run.json").exists() else None)
        if not start:
            raise ConfigError(f"{stage}.options.text_consistency pulls toward the model a fine-tune starts from: give --init-from")
        loaded["teacher"] = load_component(resolve_component(start), role=stage)
    stage_obj = cls.from_data(component, data, options, loaded, templates_for(data))
    run_config = {"stage": stage, "data": data, "clip": str(given["clip"]) if given.get("clip") else None, "init_from": str(init_from) if init_from else None,
                  "section": section, "train": json.loads(json.dumps(train))}
    return Trainer(stage_obj, train_config, out_dir, run_config=run_config, progress=progress)
