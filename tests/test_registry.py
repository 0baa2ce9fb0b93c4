"""The registry of systems: every stage it names is complete, a tiny pipeline of every system can
be built from it alone, and every part of a preset is typed (a typo is an error, not a default)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from tiny import train_tiny_system

import t2i
from t2i import registry
from t2i.checkpoint import MODEL_CLASSES
from t2i.cli import main
from t2i.config import ConfigError
from t2i.train.build import make_trainer, read_preset, stage_section


def test_every_registered_stage_is_complete() -> None:
    entries = {}
    for system in registry.SYSTEMS:
        for entry in system.stages:
            assert entries.setdefault(entry.name, entry) is entry  # `t2i train NAME` is unambiguous: one entry per name
    assert registry.stage_names() == list(entries)
    for system in registry.SYSTEMS:
        seen = set()
        for entry in system.stages:
            cls = entry.load()
            assert cls.name == entry.name and cls.model_kind in MODEL_CLASSES and dataclasses.is_dataclass(cls.options)
            assert callable(cls.from_data) and set(entry.needs) <= seen  # what it needs is trained before it
            seen.add(entry.name)
        assert callable(system.load_pipeline_class().from_folder)


def test_train_help_lists_every_stage_with_its_system(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for system in registry.SYSTEMS:
        for entry in system.stages:
            systems = ", ".join(registry.systems_of(entry.name))
            assert system.name in systems and f"{entry.name:<10} {systems}: {entry.help}" in out
    assert "reader     unclip, imagen: " in out  # a stage several systems take is listed once


@pytest.mark.parametrize("system", [s.name for s in registry.SYSTEMS])
def test_a_tiny_pipeline_of_each_system_from_the_registry_alone(system, tmp_path) -> None:
    from tiny import write_emoji_folder

    data = tmp_path / "data"
    write_emoji_folder(data)
    runs = train_tiny_system(system, data, tmp_path / "runs")
    cls = registry.system(system).load_pipeline_class()
    path = cls.assemble({name: [run] for name, run in runs.items()}, preset=read_preset("tiny")).save(tmp_path / "pipe")
    pipe = t2i.load_pipeline(path)
    assert type(pipe) is cls and json.loads((path / "pipeline.json").read_text())["pipeline"] == system
    fast = {f.name: 2 for f in dataclasses.fields(cls.options_class) if f.name.endswith("_steps")}  # every stage's step count
    a, b = pipe("a red apple", num_images=2, seed=5, **fast), pipe("a red apple", num_images=2, seed=5, **fast)
    assert len(a) == 2 and a[0].size == (64, 64)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


def test_an_unknown_diffusion_key_is_an_error_naming_file_and_key(tmp_path) -> None:
    # before the diffusion section was typed, a misspelt key silently trained the default objective
    preset = read_preset("tiny")
    preset["decoder"]["diffusion"]["objectiv"] = "eps"
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(preset))
    with pytest.raises(ConfigError, match=r"typo\.json: decoder\.diffusion: unknown option\(s\) objectiv"):
        read_preset(str(path))
    with pytest.raises(ConfigError, match="objective must be one of eps, x0, v, got 'epsilon'"):
        stage_section({"prior": {"diffusion": {"objective": "epsilon"}}}, "prior")
    with pytest.raises(ConfigError, match="clip is not a diffusion model"):
        stage_section({"clip": {"diffusion": {}}}, "clip")


def test_stage_options_are_typed_with_their_defaults_written_once(tiny_run, tmp_path, capsys) -> None:
    from t2i.unclip.stages import DecoderOptions, PriorOptions

    assert PriorOptions().drop_text == 0.1 and DecoderOptions().drop_text == 0.5
    with pytest.raises(ConfigError, match=r"decoder\.options: unknown option\(s\) drop_txt"):
        make_trainer("decoder", {"decoder": {"options": {"drop_txt": 0.2}}}, data=str(tiny_run.data), out_dir=tmp_path / "x", needs={"clip": tiny_run.run("clip")})
    assert main(["train", "decoder", "--data", str(tiny_run.data), "--config", "tiny", "--clip", str(tiny_run.run("clip")),
                 "--set", "diffusion.weighting=min_snrr", "--out", str(tmp_path / "run")]) == 2
    assert "weighting must be one of none, min_snr, got 'min_snrr'" in capsys.readouterr().err


def test_model_and_train_typos_in_a_preset_file_are_named_on_reading(tmp_path) -> None:
    for part, key in (("model", "base_chanels"), ("train", "warmup_step")):
        preset = read_preset("tiny")
        preset["upsampler"][part][key] = 1
        path = tmp_path / f"{part}.json"
        path.write_text(json.dumps(preset))
        with pytest.raises(ConfigError, match=rf"{part}\.json: upsampler\.{part}: unknown option\(s\) {key}"):
            read_preset(str(path))


def test_assemble_takes_the_stages_of_one_system(tiny_run, tmp_path, capsys) -> None:
    runs = tiny_run.runs
    assert main(["assemble", "--clip", str(runs["clip"]), "--decoder", str(runs["decoder"]), "-o", str(tmp_path / "a")]) == 2
    assert "an unclip pipeline needs one prior" in capsys.readouterr().err
    assert main(["assemble", "-o", str(tmp_path / "b")]) == 2
    assert "give the trained stages of one system" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
