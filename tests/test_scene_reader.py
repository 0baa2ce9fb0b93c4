"""The scene reader: a scene's one target and its caption, readings the world cannot draw, a tiny
reader trained through the CLI, and a pipeline that draws a wording as the caption it read."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import pixels

from t2i.data.shapes_eval import _prompts_of
from t2i.errors import InputError
from t2i.text.scene_reading import FIELDS, canonical_scene, read_scenes, say_scene, scene_targets
from t2i.text.shapes_wording import Group, Scene, parse_caption, wordings

TASKS = ("single_object", "colors", "two_objects", "counting", "position", "attribute_binding")


def _one_hot_logits(targets: torch.Tensor, slots: int = 4) -> dict[str, torch.Tensor]:
    """Logits that put all their weight on `targets` (B, slots * 4 + 1)."""
    classes = {"count": 5, "size": 3, "color": 7, "shape": 3}
    per_slot = targets[:, :-1].view(len(targets), slots, 4)
    out = {name: torch.nn.functional.one_hot(per_slot[..., i], classes[name]).float() * 30 for i, name in enumerate(FIELDS)}
    out["relation"] = torch.nn.functional.one_hot(targets[:, -1], 3).float() * 30
    return out


def test_every_canonical_prompt_is_said_as_a_caption_of_its_own_scene() -> None:
    prompts = [p for task in TASKS for p in _prompts_of(task)]
    assert len(prompts) == 240
    for prompt in prompts:
        scene = canonical_scene(parse_caption(prompt))
        said = say_scene(scene)
        assert canonical_scene(parse_caption(said)) == scene
        if scene.relation is None:
            assert len(said.split()) == len(prompt.split())  # a list is said in as many words
    # a mirrored relation swaps its objects; a list is sorted
    assert say_scene(canonical_scene(parse_caption("a red circle to the right of a square"))) == "a square to the left of a red circle"
    assert say_scene(canonical_scene(parse_caption("a triangle below a blue circle"))) == "a blue circle above a triangle"
    assert say_scene(canonical_scene(parse_caption("a triangle, two large red squares and a circle"))) == "a circle, two large red squares and a triangle"


def test_targets_read_back_as_the_scene_with_full_confidence() -> None:
    captions = ["three circles", "a small red square above a circle", "a green triangle, two squares and a blue circle", "a large cyan triangle"]
    targets = torch.stack([scene_targets(parse_caption(c), 4) for c in captions])
    scenes, confidence = read_scenes(_one_hot_logits(targets))
    assert scenes == [canonical_scene(parse_caption(c)) for c in captions]
    assert torch.all(confidence > 0.999)
    assert targets[0].tolist() == [3, 0, 0, 0] + [0] * 12 + [0]  # three of shape 0 (circle), nothing else


def test_a_reading_the_world_cannot_draw_is_none() -> None:
    five = scene_targets(Scene((Group(4, None, None, "circle"), Group(1, None, None, "square"))), 4)
    two_related = scene_targets(Scene((Group(1, None, None, "circle"), Group(1, None, None, "square")), "above"), 4)
    two_related[0] = 2  # "two circles above a square": a relation is between two single objects
    empty = torch.zeros(17, dtype=torch.long)
    scenes, _ = read_scenes(_one_hot_logits(torch.stack([five, two_related, empty])))
    assert scenes == [None, None, None]
    with pytest.raises(ValueError, match="does not fit"):
        scene_targets(Scene(tuple(Group(1, None, c, "circle") for c in ("red", "blue", "green", "cyan", "yellow"))), 4)


def test_a_slot_that_echoes_another_is_dropped_from_a_list_but_not_from_a_relation() -> None:
    circle = Group(1, None, None, "circle")
    echo = torch.tensor([1, 0, 0, 0] * 2 + [0] * 8 + [0])  # "a circle and a circle"
    related = echo.clone()
    related[-1] = 1  # "a circle to the left of a circle" is a scene of this world
    mixed = scene_targets(Scene((circle, Group(1, None, "red", "circle"))), 4)  # "a circle and a red circle": two groups
    scenes, _ = read_scenes(_one_hot_logits(torch.stack([echo, related, mixed])))
    assert scenes == [Scene((circle,)), Scene((circle, circle), "to the left of"), Scene((circle, Group(1, None, "red", "circle")))]
    assert say_scene(scenes[0]) == "a circle"


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    from PIL import Image

    from t2i.data.shapes import make_training_set

    folder = tmp_path_factory.mktemp("shapes-data")
    data = make_training_set(12, 32, 3)
    for i, (image, captions) in enumerate(zip(data.images, data.captions)):
        Image.fromarray(image).save(folder / f"s{i:02d}.png")
        (folder / f"s{i:02d}.txt").write_text("\n".join(captions) + "\n")
    return folder, [c for caps in data.captions for c in caps]


@pytest.fixture(scope="module")
def reader_run(shapes_folder, tmp_path_factory):
    from t2i.cli import main

    out = tmp_path_factory.mktemp("reader") / "run"
    assert main(["--threads", "1", "train", "reader", "--data", str(shapes_folder[0]), "--config", "tiny", "--steps", "300",
                 "--set", "train.sample_every=300", "--out", str(out), "--no-progress"]) == 0
    return out


def test_a_tiny_reader_reads_wordings_of_its_captions(reader_run, shapes_folder) -> None:
    figures = [json.loads(line) for line in (reader_run / "log.jsonl").read_text().splitlines()]
    last = [f for f in figures if "read_captions" in f][-1]
    # the figures move a little with how the captions were batched through MiniLM (a cached table's chunks)
    assert last["step"] == 300 and last["read_captions"] >= 0.95
    losses = [f["loss"] for f in figures if "loss" in f]
    assert losses[-1] < 0.1 and losses[0] > 1


def test_relation_share_sets_how_often_a_scene_with_a_relation_is_drawn() -> None:
    from t2i.checkpoint import Component
    from t2i.models.scene_reader import ReaderConfig, SceneReader
    from t2i.train.reader_stage import ReaderStage

    captions = [["a circle"], ["two red squares"], ["a triangle and a blue circle"], ["a circle above a square"], ["a square to the left of a triangle"]]
    component = Component(SceneReader(ReaderConfig(width=16, num_heads=2, depth=1, slot_depth=1)), "reader")
    shares = []
    for share in (0.0, 0.6):
        stage = ReaderStage(component, captions, relation_share=share)
        related = torch.tensor([stage.scenes[t].relation is not None for t in stage.texts])
        shares.append(float(stage.weights[related].sum() / stage.weights.sum()))
        draws = stage.batch(0, 4000, torch.Generator().manual_seed(0))["targets"][:, -1] > 0  # the relation field
        assert float(draws.float().mean()) == pytest.approx(shares[-1], abs=0.03)
    assert 0 < shares[0] < 0.5 and shares[1] == pytest.approx(0.6)


def test_the_reader_refuses_data_without_shapes_captions(tiny_run, tmp_path) -> None:
    from t2i.train.build import make_trainer, read_preset

    with pytest.raises(InputError, match="shapes-world scenes"):
        make_trainer("reader", read_preset("tiny"), data=str(tiny_run.data), out_dir=tmp_path / "r", progress=False)


@pytest.fixture(scope="module")
def reader_pipeline(tiny_run, reader_run, tmp_path_factory):
    from t2i.cli import main

    runs, path = tiny_run.runs, tmp_path_factory.mktemp("reader-pipe") / "pipe"
    assert main(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"]),
                 "--upsampler", str(runs["upsampler"]), "--reader", str(reader_run), "--config", "tiny", "--fp32", "-o", str(path)]) == 0
    assert json.loads((path / "pipeline.json").read_text())["reader"] == "reader"
    return path


@pytest.fixture(scope="module")
def imagen_reader_pipeline(tiny_imagen, reader_run, tmp_path_factory):
    from t2i.cli import main

    runs, path = tiny_imagen.runs, tmp_path_factory.mktemp("imagen-reader-pipe") / "pipe"
    assert main(["assemble", "--imagen-base", str(runs["imagen-base"]), "--imagen-sr", str(runs["imagen-sr"]), "--reader", str(reader_run),
                 "--config", "tiny", "--fp32", "-o", str(path)]) == 0
    assert json.loads((path / "pipeline.json").read_text())["reader"] == "reader"
    return path


def test_a_reader_alone_is_no_system(reader_run, tmp_path, capsys) -> None:
    from t2i.cli import main

    assert main(["assemble", "--reader", str(reader_run), "-o", str(tmp_path / "p")]) == 2  # both systems take one: which?
    assert "give the trained stages of one system" in capsys.readouterr().err


@pytest.mark.parametrize("system", ["unclip", "imagen"])
def test_a_pipeline_with_a_reader_draws_a_wording_as_its_caption(system, request, shapes_folder) -> None:
    import t2i

    pipe = t2i.load_pipeline(request.getfixturevalue("reader_pipeline" if system == "unclip" else "imagen_reader_pipeline"))
    assert pipe.kind == system and pipe.reader is not None
    caption = "a square and two circles"
    assert caption in shapes_folder[1]
    wording = next(w for w in wordings(caption) if parse_caption(w) is None and "circle" in w)
    assert pipe.read([caption, wording], pipe.defaults.updated(scene_reading=0.0)) == [caption, "two circles and a square"]
    assert pipe.read([wording], pipe.defaults.updated(scene_reading=1.0)) == [wording]  # 1: never
    fast = {"prior_steps": 2, "decoder_steps": 2, "upsampler_steps": 2} if system == "unclip" else {"base_steps": 2, "sr_steps": 2}
    said = pipe(wording, num_images=2, seed=3, scene_reading=0.0, **fast)
    direct = pipe("two circles and a square", num_images=2, seed=3, **fast)
    own = pipe(wording, num_images=2, seed=3, scene_reading=1.0, **fast)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(said), pixels(direct)))
    assert not all(np.array_equal(a, b) for a, b in zip(pixels(said), pixels(own)))


def test_generate_and_eval_say_what_the_reader_read(reader_pipeline, tmp_path, capsys) -> None:
    from t2i.cli import main

    fast = ["--prior-steps", "2", "--decoder-steps", "2", "--upsampler-steps", "1", "--scene-reading", "0"]
    wording = next(w for w in wordings("a square and two circles") if parse_caption(w) is None and "circle" in w)
    assert main(["generate", wording, "--model", str(reader_pipeline), *fast, "-o", str(tmp_path / "a.png")]) == 0
    assert "read as: two circles and a square" in capsys.readouterr().err
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"prompt": wording, "canonical": "a circle and a square", "task": "two_objects"}) + "\n"
                    + json.dumps({"prompt": "a square and a circle", "canonical": "a circle and a square", "task": "two_objects"}) + "\n")
    assert main(["eval", "prompts", "--data", "shapes", "--prompts-file", str(mine), "--model", str(reader_pipeline), "--samples", "1", *fast,
                 "-o", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "prompts-shapes.json").read_text())
    assert [p["read_as"] for p in result["per_prompt"]] == ["two circles and a square", "a square and a circle"]  # a caption is kept
    assert result["read_as_canonical"] == 0.5
