"""A tiny trained unCLIP (and a tiny Imagen), built once per test session through the public training API.

Import the fixtures into a test module with

    from tiny import tiny_run  # noqa: F401

`tiny_run` is a TinyRun: an 8-image user dataset folder (emoji tiles with same-named .txt
captions), one training run per stage with the `tiny` preset (4 steps each), and a pipeline
folder assembled from them by `t2i assemble --fp32`. A fixture imported into several modules
is a separate fixture in each, so the build itself is memoised here: the suite trains once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# Emoji tiles of the train split used as the user dataset: a spread of subjects.
EMOJI_INDICES = (0, 50, 100, 150, 200, 250, 300, 350)
PROMPTS = ("grinning face with big eyes", "thought balloon")


@dataclass(frozen=True)
class TinyRun:
    root: Path
    data: Path  # the user dataset folder
    runs: dict  # stage -> training run folder
    pipeline: Path  # assembled fp32 pipeline folder

    def run(self, stage: str) -> Path:
        return self.runs[stage]


_BUILT: dict[Path, TinyRun] = {}


def write_emoji_folder(folder: Path, indices=EMOJI_INDICES) -> list[list[str]]:
    """Emoji tiles as PNGs with same-named .txt caption files; returns their captions."""
    from PIL import Image

    from t2i.data.emoji import load_emoji

    folder.mkdir(parents=True, exist_ok=True)
    emoji = load_emoji(64, "train")
    captions = []
    for n, i in enumerate(indices):
        caps = list(emoji.captions[i][:2])
        Image.fromarray(emoji.images[i]).save(folder / f"e{n:02d}.png")
        (folder / f"e{n:02d}.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
        captions.append(caps)
    return captions


def build_tiny_run(root: Path) -> TinyRun:
    from t2i.cli import main

    data = root / "data"
    write_emoji_folder(data)
    runs = train_tiny_system("unclip", data, root / "runs")
    pipeline = root / "pipeline"
    code = main(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"]),
                 "--upsampler", str(runs["upsampler"]), "--config", "tiny", "--fp32", "-o", str(pipeline)])
    assert code == 0 and (pipeline / "pipeline.json").is_file()
    return TinyRun(root=root, data=data, runs=runs, pipeline=pipeline)


def train_tiny_system(system: str, data: Path, root: Path) -> dict[str, Path]:
    """Every stage of a registered system but the optional ones, trained on the tiny preset in the
    registry's order, each given the runs it needs: {stage: run folder}."""
    from t2i import registry
    from t2i.train.build import make_trainer, read_preset

    preset, runs = read_preset("tiny"), {}
    for entry in (e for e in registry.system(system).stages if not e.optional):
        trainer = make_trainer(entry.name, preset, data=str(data), out_dir=root / entry.name, needs={n: runs[n] for n in entry.needs}, progress=False)
        trainer.train()
        assert trainer.step == preset[entry.name]["train"]["steps"]
        runs[entry.name] = root / entry.name
    return runs


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    base = tmp_path_factory.getbasetemp()
    if base not in _BUILT:
        # Session fixtures run before conftest's per-test cache fixture: use the same cache.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("T2I_CACHE", str(base / "t2i-cache"))
            mp.delenv("T2I_DEBUG", raising=False)
            _BUILT[base] = build_tiny_run(base / "tiny-unclip")
    return _BUILT[base]


_BUILT_IMAGEN: dict[Path, TinyRun] = {}


@pytest.fixture(scope="session")
def tiny_imagen(tmp_path_factory, tiny_run) -> TinyRun:
    """A tiny Imagen (base 32x32 + super-resolution to 64x64) on the same data, assembled by the CLI."""
    base = tmp_path_factory.getbasetemp()
    if base not in _BUILT_IMAGEN:
        from t2i.cli import main

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("T2I_CACHE", str(base / "t2i-cache"))
            mp.delenv("T2I_DEBUG", raising=False)
            root = base / "tiny-imagen"
            runs = train_tiny_system("imagen", tiny_run.data, root / "runs")
            pipeline = root / "pipeline"
            code = main(["assemble", "--imagen-base", str(runs["imagen-base"]), "--imagen-sr", str(runs["imagen-sr"]), "--config", "tiny", "--fp32", "-o", str(pipeline)])
            assert code == 0 and (pipeline / "pipeline.json").is_file()
            _BUILT_IMAGEN[base] = TinyRun(root=root, data=tiny_run.data, runs=runs, pipeline=pipeline)
    return _BUILT_IMAGEN[base]


def state_dicts_equal(a, b) -> bool:
    """Every tensor of two modules' state dicts has the same name, dtype, shape and values."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def pixels(images) -> list:
    import numpy as np

    return [np.asarray(im) for im in images]


def env_for_subprocess() -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), OMP_NUM_THREADS="1")
    env.pop("T2I_DEBUG", None)
    return env
