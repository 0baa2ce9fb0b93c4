"""Finite or refused: numbers that would train NaN weights, draw black images, or read files
from elsewhere are refused at the boundary with one line, never written or loaded silently."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from t2i.checkpoint import CheckpointError, load_component, resolve_component
from t2i.cli import main


def _one_line(argv, capsys, *phrases) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i: error:") and "\n" not in err, err
    for phrase in phrases:
        assert phrase in err, err
    return err


def test_an_infinite_learning_rate_is_refused(tiny_run, tmp_path, capsys) -> None:
    for lr in ("inf", "1e309"):
        _one_line(["train", "upsampler", "--data", str(tiny_run.data), "--config", "tiny", "--lr", lr, "--out", str(tmp_path / lr)], capsys,
                  "train.lr must be a finite number > 0")


def test_a_diverging_run_stops_and_saves_nothing_non_finite(tiny_run, tmp_path, capsys) -> None:
    # lr 1e30 is finite, so accepted; the first update blows the weights up and the loss goes NaN
    out = tmp_path / "run"
    _one_line(["train", "upsampler", "--data", str(tiny_run.data), "--config", "tiny", "--lr", "1e30", "--steps", "6", "--set", "train.save_every=1",
               "--set", "train.warmup_steps=0", "--set", "train.log_every=1", "--no-progress", "--out", str(out)], capsys, "try a lower --lr")
    saved = sorted((out / "checkpoints").glob("step-*"))
    for checkpoint in saved:
        load_component(checkpoint, role="upsampler")  # every saved checkpoint loads: its weights are finite

    def no_constants(name):
        raise AssertionError(f"log.jsonl holds {name}, which is not JSON")

    for line in (out / "log.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=no_constants)


def test_non_finite_weights_are_refused_on_loading(tiny_run, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(resolve_component(tiny_run.run("upsampler")), tmp_path / "up")
    state = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"{name} holds NaN or infinite values"):
        load_component(folder, role="upsampler")


def test_a_pipeline_part_outside_the_folder_is_refused(tiny_run, tmp_path, capsys) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_run.pipeline / "decoder", elsewhere / "decoder")
    pipe = shutil.copytree(tiny_run.pipeline, tmp_path / "models" / "pipe")
    spec = json.loads((pipe / "pipeline.json").read_text())
    spec["decoder"] = "../../elsewhere/decoder"
    (pipe / "pipeline.json").write_text(json.dumps(spec))
    _one_line(["generate", "a cat", "--model", str(pipe), "-o", str(tmp_path / "x.png")], capsys, "outside the pipeline folder")


def test_a_decompression_bomb_is_one_line(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    image = tmp_path / "big.png"
    Image.new("RGB", (64, 64), "red").save(image)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4,096 pixels: past twice the limit, as a 20000x20000 image is past the real one
    _one_line(["variations", str(image), "--model", str(tiny_run.pipeline), "-o", str(tmp_path / "v.png")], capsys, "too large to open")


def test_more_threads_than_cores_is_refused(tiny_run, tmp_path, capsys) -> None:
    _one_line(["--threads", "999", "generate", "a cat", "--model", str(tiny_run.pipeline), "-o", str(tmp_path / "x.png")], capsys, "--threads must be between 1 and")


@pytest.mark.parametrize("system", ["unclip", "imagen"])
def test_the_python_api_refuses_wrong_types_with_a_typed_error(system, tiny_run, tiny_imagen) -> None:
    import t2i
    from t2i.errors import InputError

    pipe = t2i.load_pipeline(tiny_run.pipeline if system == "unclip" else tiny_imagen.pipeline)
    for bad, phrase in (({"seed": "x"}, "seed must be a whole number"), ({"seed": 2**63}, "seed must be a whole number"), ({"seed": -1}, "seed must be"),
                        ({"num_images": 1.5}, "number of images must be a whole number"), ({"num_images": True}, "number of images"),
                        ({"first_index": -2}, "first_index must be")):
        with pytest.raises(InputError, match=phrase):
            pipe("a red apple", **bad)
    for bad in (None, 3, ""):
        with pytest.raises(InputError, match="a shipped model's name or a pipeline folder's path"):
            t2i.load_pipeline(bad)
    if system == "unclip":
        with pytest.raises(InputError, match="variations take a PIL image"):
            pipe.variations(str(tiny_run.data / "e00.png"))
        with pytest.raises(InputError, match="interpolate takes two PIL images"):
            pipe.interpolate("a.png", "b.png")


def test_undecodable_prompts_and_impossible_sizes_are_one_line_errors(tiny_imagen, tmp_path, capsys) -> None:
    model = ["--model", str(tiny_imagen.pipeline)]
    # a shell hands undecodable argv bytes to Python as lone surrogates
    _one_line(["generate", "\udcff\udcfe cat", *model, "-o", str(tmp_path / "a.png")], capsys, "prompt 0 is not valid text")
    _one_line(["generate", "a cat", *model, "-n", "100000000", "-o", str(tmp_path / "b.png")], capsys, "-n must be from 1 to 64")
    (tmp_path / "p.txt").write_text("a cat\n")
    _one_line(["generate", "--prompts-file", str(tmp_path / "p.txt"), "--out-dir", str(tmp_path / "o"), *model, "--batch-size", str(10**9)], capsys,
              "--batch-size must be from 1 to 256")
    _one_line(["eval", "shapes", *model, "--batch-size", str(10**9)], capsys, "--batch-size must be from 1 to 256")
    assert not any((tmp_path / name).exists() for name in ("a.png", "b.png", "o"))
    import t2i
    from t2i.errors import InputError

    with pytest.raises(InputError, match="2000 images in one call; at most 1024"):
        t2i.load_pipeline(tiny_imagen.pipeline)("a cat", num_images=2000)


def test_zero_or_negative_model_sizes_are_one_line_errors(tiny_run, tmp_path, capsys) -> None:
    base = ["--data", str(tiny_run.data), "--config", "tiny"]
    _one_line(["train", "imagen-base", *base, "--set", "model.base_channels=0", "--out", str(tmp_path / "a")], capsys, "UNetConfig.base_channels must be a whole number >= 1, got 0")
    _one_line(["train", "upsampler", *base, "--set", "model.channel_mults=[1,-2]", "--out", str(tmp_path / "b")], capsys, "UNetConfig.channel_mults must be a whole number >= 1")
    _one_line(["train", "clip", *base, "--set", "model.embed_dim=-8", "--out", str(tmp_path / "c")], capsys, "CLIPConfig.embed_dim must be a whole number >= 1")
    _one_line(["train", "prior", *base, "--clip", str(tiny_run.run("clip")), "--set", "model.depth=0", "--out", str(tmp_path / "d")], capsys,
              "PriorConfig.depth must be a whole number >= 1")
