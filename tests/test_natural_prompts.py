"""Natural prompts: caption augmentation in the data layer, and the evaluation on prompts that
training never shows (issue: the shipped models answered their training captions only)."""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
import torch

from t2i.cli import main
from t2i.data.dataset import ImageCaptionSet
from t2i.data.shapes_eval import TASKS, parse_prompt, prompt_is_held_out
from t2i.errors import InputError
from t2i.eval.prompts import (
    EMOJI_DEV_PROMPTS,
    EMOJI_PROMPTS,
    SHAPES_DEV_PROMPTS,
    SHAPES_PROMPTS,
    checked_prompts,
    emoji_prompts,
    emoji_target_groups,
    retrieval_images,
    shapes_paraphrases,
    training_strings,
)
from t2i.text.augment import ADJECTIVES, EMOJI_TEMPLATES, SHAPES_TEMPLATES, VARIANTS_PER_CAPTION, all_variants, caption_variants, fill, rephrasings
from t2i.text.held_out import normalize_prompt
from t2i.train.captions import CaptionTable


def test_variants_keep_the_caption_and_its_article() -> None:
    assert fill("{a} {c}", "elephant") == "an elephant" and fill("{a} {c}", "red apple") == "a red apple"
    assert fill("a picture of {a} {c}", "a red circle") == "a picture of a red circle"  # no "a a"
    assert caption_variants("elephant", EMOJI_TEMPLATES)[0] == "an elephant"  # the article form always
    assert caption_variants("elephant", EMOJI_TEMPLATES) == caption_variants("elephant", EMOJI_TEMPLATES)
    assert len(caption_variants("elephant", EMOJI_TEMPLATES)) == VARIANTS_PER_CAPTION
    with_adjective = sum("{adj}" in t for t in EMOJI_TEMPLATES)
    assert len(all_variants("elephant", EMOJI_TEMPLATES)) == len(EMOJI_TEMPLATES) - with_adjective + with_adjective * len(ADJECTIVES)
    assert "an adorable elephant" in all_variants("elephant", EMOJI_TEMPLATES)  # "an" before a vowel of the adjective
    # a list has no order, a relation has; names with "and" are not lists
    assert rephrasings("a red circle and two squares") == ["two squares and a red circle", "a red circle and 2 squares"]
    # numerals are taught, but never as an evaluation prompt ("2 circles") nor a framing of one
    assert rephrasings("two red circles") == ["2 red circles"] and rephrasings("two-hump camel") == []
    assert rephrasings("two circles") == [] and not any(re.search(r"\b2 circles", v) for v in all_variants("two circles", SHAPES_TEMPLATES))
    assert rephrasings("a circle to the left of a square") == [] and rephrasings("flag of trinidad and tobago") == []
    assert "two squares and a red circle on white" in all_variants("a red circle and two squares", SHAPES_TEMPLATES)


def _table(augment: float) -> CaptionTable:
    data = ImageCaptionSet(np.zeros((3, 4, 4, 3), np.uint8), [["cat"], ["dog", "puppy"], ["red apple"]])
    return CaptionTable(data, augment=augment, templates=EMOJI_TEMPLATES)


def test_augmentation_is_drawn_from_the_step_generator() -> None:
    table = _table(0.5)
    idx = torch.arange(3).repeat(100)
    draw = lambda seed: table.draw(idx, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(7), draw(7)) and not torch.equal(draw(7), draw(8))
    texts = Counter(table.texts[r] for r in draw(7).tolist())
    originals = {"cat", "dog", "puppy", "red apple"}
    assert 0.35 < sum(v for k, v in texts.items() if k not in originals) / 300 < 0.65  # about half are variants
    assert {"a cat", "a dog", "a red apple"} <= set(texts)
    # every drawn string belongs to its own image: a variant of one of that image's captions
    for image, row in zip(idx.tolist(), draw(7).tolist()):
        own = [["cat"], ["dog", "puppy"], ["red apple"]][image]
        assert any(table.texts[row] == c or table.texts[row] in caption_variants(c, EMOJI_TEMPLATES) for c in own)


def test_no_augmentation_draws_as_before() -> None:
    """Without augmentation the table consumes the generator as it always did: old runs resume unchanged."""
    plain, off = _table(0.0), _table(0.0)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(plain.draw(torch.arange(3), g1), off.draw(torch.arange(3), g2))
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert plain.variants.shape[1] == 0


def test_first_caption_draws_the_name_more_often_and_nothing_more_when_off() -> None:
    data = ImageCaptionSet(np.zeros((2, 4, 4, 3), np.uint8), [["dog", "puppy", "hound", "pup"], ["red apple"]])
    idx = torch.zeros(4000, dtype=torch.long)
    names = lambda table, seed: [table.texts[r] for r in table.draw(idx, torch.Generator().manual_seed(seed)).tolist()]  # noqa: E731
    off, half, always = (CaptionTable(data, first=p) for p in (0.0, 0.5, 1.0))
    assert set(names(always, 0)) == {"dog"}
    share = lambda table: names(table, 0).count("dog") / len(idx)  # noqa: E731
    assert 0.22 < share(off) < 0.28 and 0.59 < share(half) < 0.66  # 1/4, and 1/2 + 1/2 * 1/4
    assert names(half, 5) == names(half, 5) != names(half, 6)
    # off, the table draws one number per image, as it always did: runs from before resume unchanged
    g = torch.Generator().manual_seed(9)
    rows = off.draw(torch.tensor([0, 0, 1]), g)
    u = torch.rand(3, generator=torch.Generator().manual_seed(9))
    assert [off.texts[r] for r in rows.tolist()] == [["dog", "puppy", "hound", "pup"][int(u[0] * 4)], ["dog", "puppy", "hound", "pup"][int(u[1] * 4)], "red apple"]
    assert torch.equal(torch.rand(2, generator=g), torch.rand(5, generator=torch.Generator().manual_seed(9))[3:])
    with pytest.raises(InputError, match="first_caption"):
        CaptionTable(data, first=1.5)


def test_evaluation_prompt_sets_are_well_formed() -> None:
    emoji = emoji_prompts()
    splits = Counter(p.split for p in emoji)
    assert len(emoji) >= 300 and splits["train"] >= 200 and splits["heldout"] >= 100
    groups = emoji_target_groups()
    assert all(p.target in groups for p in emoji) and len({p.target for p in emoji}) == len(emoji)
    dev = emoji_prompts(EMOJI_DEV_PROMPTS)  # tuning prompts: other emoji, other words
    assert len(dev) >= 250 and all(p.target in groups for p in dev) and len({p.target for p in dev}) == len(dev)
    assert not {groups[p.target] for p in dev} & {groups[p.target] for p in emoji}
    assert not {normalize_prompt(p.prompt) for p in dev} & {normalize_prompt(p.prompt) for p in emoji}
    sets, shapes_dev = [shapes_paraphrases(path) for path in SHAPES_PROMPTS], shapes_paraphrases(SHAPES_DEV_PROMPTS)
    # the evaluation set is the files in order; its first 32 a task are the first file, its first 128 the first two, and each
    # 64 a task more the next file (`--limit` keeps every earlier figure)
    per_task = [32, 96] + [64] * (len(sets) - 2)
    union = [p for paraphrases in sets for p in paraphrases]
    assert SHAPES_PROMPTS[0].name == "shapes-paraphrases.jsonl" and shapes_paraphrases() == union
    for count, limit in enumerate(np.cumsum(per_task)[:-1].tolist(), start=1):
        files = [p for paraphrases in sets[:count] for p in paraphrases]
        assert [p for t in TASKS for p in [q for q in union if q.task == t][:limit]] == [p for t in TASKS for p in files if p.task == t]
    assert checked_prompts(EMOJI_PROMPTS, "emoji") == emoji and checked_prompts(EMOJI_DEV_PROMPTS, "emoji") == dev  # targets on their split
    for paraphrases, count in zip([*sets, shapes_dev], [*per_task, 32], strict=True):  # the files and the development set
        assert Counter(p.task for p in paraphrases) == dict.fromkeys(TASKS, count)
        assert all(parse_prompt(p.canonical).task == p.task and not prompt_is_held_out(p.canonical) for p in paraphrases)
        assert all(normalize_prompt(p.prompt) != normalize_prompt(p.canonical) for p in paraphrases)
    said = [normalize_prompt(p.prompt) for p in union + shapes_dev]
    assert len(set(said)) == len(said)  # no wording is asked twice, within or across the sets


def test_evaluation_prompts_are_never_trained_on() -> None:
    """Not a training caption, nor any variant the augmentation can make of one (all of them,
    not only the few each caption is given)."""
    emoji = [p.prompt for p in emoji_prompts() + emoji_prompts(EMOJI_DEV_PROMPTS)]
    shapes = [p.prompt for p in shapes_paraphrases() + shapes_paraphrases(SHAPES_DEV_PROMPTS)]
    for data, prompts in (("emoji", emoji), ("shapes", shapes)):
        seen = training_strings(data)
        assert len(seen) > 100_000
        assert [p for p in prompts if normalize_prompt(p) in seen] == [], data


def test_lookup_baseline_finds_the_nearest_training_caption() -> None:
    images, captions = retrieval_images(["a big grey elephant", "a slice of pizza with cheese"])
    assert images.shape == (2, 64, 64, 3) and "elephant" in captions[0] and "pizza" in captions[1]


def test_eval_prompts_runs_on_a_tiny_model_and_writes_its_tables(tiny_run, tmp_path, capsys) -> None:
    common = ["--model", str(tiny_run.pipeline), "--samples", "1", "--limit", "2", "--decoder-steps", "2", "--prior-steps", "2", "--upsampler-steps", "1"]
    assert main(["eval", "prompts", "--data", "emoji", *common, "-o", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "prompts-emoji.json").read_text())
    assert [r["split"] for r in result["rows"]][:4] == ["train: natural prompts", "train: exact names", "train: lookup (no generation)", "train: natural − names"]
    assert all(0.0 <= r["fidelity@5"] <= 1.0 for r in result["rows"] if "−" not in r["split"])  # the gap rows may be negative
    train = result["summary"]["train"]
    lo, hi = train["natural − names interval"]
    assert train["natural − names"] == pytest.approx(train["natural prompts"] - train["exact names"]) and lo <= train["natural − names"] <= hi
    # the lookup needs no model: it scores the share of prompts whose retrieved image is of the target
    from t2i.data.emoji import load_emoji

    every, groups = load_emoji(64, "all"), emoji_target_groups()
    chosen = [p for p in emoji_prompts() if p.split == "train"][:2]
    images, _ = retrieval_images([p.prompt for p in chosen])
    right = [any(np.array_equal(im, every.images[j]) for j in np.flatnonzero(every.groups == groups[p.target])) for im, p in zip(images, chosen)]
    assert result["summary"]["train"]["lookup (no generation)"] == np.mean(right) == 0.5
    assert "| train: natural prompts | 2 | 2 |" in (tmp_path / "prompts-emoji.md").read_text()
    assert main(["eval", "prompts", "--data", "shapes", *common, "-o", str(tmp_path)]) == 0
    shapes = json.loads((tmp_path / "prompts-shapes.json").read_text())
    assert [r["prompts"] for r in shapes["rows"]] == ["paraphrase", "canonical", "paraphrase − canonical", "gap, 95% interval over prompts"]
    gaps = shapes["rows"][2]
    assert set(shapes["gap_interval"]) == set(TASKS) and all(lo <= gaps[t] + 1e-12 and gaps[t] <= hi + 1e-12 for t, (lo, hi) in shapes["gap_interval"].items())
    assert shapes["count"] == 2 * len(TASKS) and set(shapes["summary"]["paraphrase"]) == {*TASKS, "overall"}
    per_prompt = shapes["per_prompt"]  # each paraphrase's pass rate; their mean per task is the summary
    assert [p["prompt"] for p in per_prompt] == [p.prompt for t in TASKS for p in [q for q in shapes_paraphrases() if q.task == t][:2]]
    assert np.mean([p["paraphrase_pass"] for p in per_prompt if p["task"] == TASKS[0]]) == shapes["summary"]["paraphrase"][TASKS[0]]
    assert (tmp_path / "prompts-shapes.png").stat().st_size > 1000
    assert main(["eval", "prompts", "--data", "shapes", "--dev", *common, "-o", str(tmp_path / "dev")]) == 0  # the tuning prompts
    dev = json.loads((tmp_path / "dev" / "prompts-shapes.json").read_text())["per_prompt"]
    assert [p["prompt"] for p in dev] == [p.prompt for t in TASKS for p in [q for q in shapes_paraphrases(SHAPES_DEV_PROMPTS) if q.task == t][:2]]
    assert (tmp_path / "dev" / "prompts-shapes.md").read_text().startswith(f"Shapes, paraphrased prompts ({SHAPES_DEV_PROMPTS.name})")
    mine = tmp_path / "mine.jsonl"  # a user's own paraphrases
    mine.write_text(json.dumps({"prompt": "3 squares please", "canonical": "three squares", "task": "counting"}) + "\n")
    assert main(["eval", "prompts", "--data", "shapes", "--prompts-file", str(mine), *common, "-o", str(tmp_path / "mine")]) == 0
    assert [p["prompt"] for p in json.loads((tmp_path / "mine" / "prompts-shapes.json").read_text())["per_prompt"]] == ["3 squares please"]


@pytest.mark.parametrize("data, line, message", [
    ("shapes", "{not json", "mine.jsonl:1: not JSON"),
    ("shapes", "[1, 2]", "mine.jsonl:1: not a JSON object"),
    ("shapes", '{"prompt": "3 squares"}', "mine.jsonl:1: needs the text fields canonical, task"),
    ("shapes", '{"prompt": " ", "canonical": "three squares", "task": "counting"}', "mine.jsonl:1: needs the text field prompt"),
    ("shapes", '{"prompt": "3 squares", "canonical": "three squares", "task": "colors"}', "mine.jsonl:1: canonical prompt 'three squares' is not a 'colors' prompt"),
    ("shapes", '{"prompt": "3 squares", "canonical": "three squarish things", "task": "counting"}', "not a 'counting' prompt"),
    ("emoji", '{"prompt": "a big elephant", "target": "mammoth-ish", "split": "train"}', "mine.jsonl:1: target 'mammoth-ish' is not an emoji's CLDR name"),
    ("emoji", '{"prompt": "a big elephant", "target": "elephant", "split": "heldout"}', "mine.jsonl:1: 'elephant' is a train emoji, not 'heldout'")])
def test_a_bad_prompts_file_is_a_one_line_error_before_any_model_loads(tmp_path, capsys, data, line, message) -> None:
    mine = tmp_path / "mine.jsonl"
    mine.write_text(line + "\n")
    with pytest.raises(InputError, match=re.escape(message)):
        checked_prompts(mine, data)
    # the model does not exist: the file is checked first
    assert main(["eval", "prompts", "--model", str(tmp_path / "no-model"), "--data", data, "--prompts-file", str(mine)]) == 2
    assert message in capsys.readouterr().err


def test_prompts_file_and_dev_are_exclusive_and_a_binary_file_is_refused(tmp_path, capsys) -> None:
    mine = tmp_path / "mine.jsonl"
    mine.write_bytes(b"\xff\xfe\x00 binary")
    assert main(["eval", "prompts", "--model", str(tmp_path / "no-model"), "--data", "shapes", "--prompts-file", str(mine)]) == 2
    assert "mine.jsonl: not a UTF-8 text file" in capsys.readouterr().err
    assert main(["eval", "prompts", "--model", str(tmp_path / "no-model"), "--dev", "--prompts-file", str(mine)]) == 2
    assert "--dev and --prompts-file each choose the prompts" in capsys.readouterr().err


def test_text_only_clip_training_keeps_every_image_embedding(tiny_run, tmp_path) -> None:
    from t2i.checkpoint import load_component
    from t2i.train.build import resolve_component

    out, start = tmp_path / "text", tiny_run.run("clip")
    assert main(["train", "clip", "--data", str(tiny_run.data), "--config", "tiny", "--init-from", str(start), "--no-progress",
                 "--steps", "3", "--set", "options.text_only=true", "--out", str(out)]) == 0
    trained, before = load_component(resolve_component(out), role="clip").model, load_component(resolve_component(start), role="clip").model
    ours, theirs = trained.state_dict(), before.state_dict()
    text = {k for k in ours if k.startswith("text_") or k == "logit_scale"}
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k not in text)  # the image tower, bit for bit
    assert any(not torch.equal(ours[k], theirs[k]) for k in text)  # and the text side learned
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    assert torch.equal(trained.encode_image(images), before.encode_image(images))


def test_caption_memory_pulls_a_prompt_towards_its_nearest_captions() -> None:
    from t2i.pipelines.caption_memory import CaptionMemory

    pooled = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0]]), dim=-1)
    memory = CaptionMemory(pooled, text, k=2, temperature=0.01)
    # a prompt whose sentence embedding is that of caption 1, with a text embedding pointing elsewhere
    own = torch.tensor([[1.0, 0.0]])
    assert torch.allclose(memory.blend(pooled[1:2], own, 1.0), text[1:2], atol=1e-4)
    half = memory.blend(pooled[1:2], own, 0.5)
    assert torch.allclose(half, torch.nn.functional.normalize(torch.tensor([[1.0, 1.0]]), dim=-1), atol=1e-4)
    assert torch.equal(memory.blend(pooled[1:2], own, 0.0), own)
    assert memory.nearest_captions(pooled[1:2]) is None  # no strings kept
    named = CaptionMemory(pooled, text, ["a", "b", "c"], k=2, temperature=0.01)
    assert named.nearest_captions(torch.tensor([[0.1, 0.2, 0.9], [0.8, 0.1, 0.0]])) == ["c", "a"]
    with pytest.raises(ValueError, match="3 embeddings and 2 captions"):
        CaptionMemory(pooled, text, ["a", "b"])


def test_a_memory_without_text_embeddings_has_its_neighbours_embedded_when_sampling(tmp_path) -> None:
    from t2i.pipelines.caption_memory import CaptionMemory

    pooled = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0, 1.0], [-1.0, 0]]), dim=-1)
    captions = ["a", "b", "c"]
    asked: list[list[str]] = []

    def embed_text(names: list[str]) -> torch.Tensor:
        asked.append(names)
        return text[[captions.index(n) for n in names]] * 3  # any length: the memory normalises
    stored, computed = CaptionMemory(pooled, text, captions, k=2), CaptionMemory(pooled, None, captions, k=2)
    prompts = torch.tensor([[0.1, 0.9, 0.2], [0.0, 0.8, 0.3]])
    assert torch.allclose(computed.neighbours(prompts, embed_text), stored.neighbours(prompts), atol=1e-6)
    assert asked == [["b", "c"]]  # the two prompts share their neighbours: each embedded once
    with pytest.raises(ValueError, match="no text embeddings"):
        computed.blend(prompts, text[:2], 0.5)
    with pytest.raises(ValueError, match="captions or their text embeddings"):
        CaptionMemory(pooled, None, None)
    computed.save(tmp_path / "memory")
    loaded = CaptionMemory.load(tmp_path / "memory")
    assert loaded.text_embeds is None and loaded.captions == captions
    assert loaded.nearest_captions(prompts) == ["b", "b"]


def test_projected_keys_keep_a_captions_own_nearest_and_shrink_the_memory(tmp_path) -> None:
    from t2i.pipelines.caption_memory import build_caption_memory

    captions = ["a red circle", "two blue squares", "a green triangle above a circle", "three yellow circles", "a square left of a triangle",
                "grinning face", "red apple", "a purple square and a cyan circle"]
    full, small = build_caption_memory(captions), build_caption_memory(captions, dims=4)
    assert full.keys.shape == (8, 384) and full.projection is None
    assert small.keys.shape == (8, 4) and small.projection.shape == (384, 4)
    assert torch.allclose(small.keys.norm(dim=-1), torch.ones(8), atol=1e-5)
    from t2i.text.encoder import get_text_encoder

    pooled = get_text_encoder(32).encode(small.captions).pooled
    assert small.nearest_captions(pooled) == small.captions  # each caption is still its own nearest
    for name, memory in (("full", full), ("small", small)):
        memory.save(tmp_path / name)
    from safetensors.torch import load_file

    saved = {name: load_file(tmp_path / name / "memory.safetensors") for name in ("full", "small")}
    assert saved["full"]["keys_int8"].shape == (8, 384) and saved["small"]["keys_int8"].shape == (8, 4)  # a byte a dimension
    assert "projection" not in saved["full"] and "text_embeds_int8" not in saved["small"]
    loaded = type(small).load(tmp_path / "small")
    assert torch.equal(loaded.projection, small.projection)
    assert loaded.nearest_captions(pooled) == small.captions
    with pytest.raises(ValueError, match="between 1 and 8 for 8 captions"):  # no more directions than captions
        build_caption_memory(captions, dims=9)


def test_search_words_are_keys_that_stand_for_their_emojis_name(tmp_path) -> None:
    from t2i.data.dataset import ImageCaptionSet
    from t2i.data.search_words import search_aliases
    from t2i.pipelines.caption_memory import build_caption_memory
    from t2i.text.encoder import get_text_encoder

    data = ImageCaptionSet(np.zeros((4, 8, 8, 3), np.uint8), [["flying disc", "ultimate"], ["honeybee", "bee"], ["honeybee, dark", "bee"], ["toilet"]],
                           groups=np.array([0, 1, 1, 2]))
    words = [["frisbee", "game", "bee"], ["insect", "game"], ["insect", "game"], ["loo", "game"]]
    aliases = search_aliases(data, words)
    # "bee" is a caption already, "game" names three emoji; each emoji's name with all its words is a key too
    assert aliases == [("frisbee", "flying disc"), ("flying disc, frisbee, game, bee", "flying disc"), ("insect", "honeybee"),
                       ("honeybee, insect, game", "honeybee"), ("loo", "toilet"), ("toilet, loo, game", "toilet")]
    captions = ["bee", "flying disc", "honeybee", "toilet", "ultimate"]  # every caption of one image per group
    plain, memory = build_caption_memory(captions), build_caption_memory(captions, aliases=aliases, dims=4)
    assert len(plain) == 5 and plain.key_caption is None and len(memory) == 11 and memory.caption_count == 5
    prompts = get_text_encoder(32).encode(["a frisbee", "a loo", "a honeybee"]).pooled
    assert plain.nearest_captions(prompts)[0] != "flying disc"
    assert memory.nearest_captions(prompts) == ["flying disc", "toilet", "honeybee"]  # a caption the models were trained on
    made = []  # neighbours' embeddings are made from the captions the keys stand for, each once
    embed = lambda captions: made.append(captions) or torch.eye(5)[[memory.captions.index(c) for c in captions]]  # noqa: E731
    assert float(memory.neighbours(prompts[:1], embed)[0, memory.captions.index("flying disc")]) > 0.9
    assert set(made[0]) <= set(memory.captions) and len(made[0]) == len(set(made[0]))
    memory.save(tmp_path / "memory")
    loaded = type(memory).load(tmp_path / "memory")
    assert torch.equal(loaded.key_caption, memory.key_caption) and loaded.nearest_captions(prompts) == memory.nearest_captions(prompts)
    assert json.loads((tmp_path / "memory" / "config.json").read_text())["keys"] == 11
    with pytest.raises(ValueError, match="does not name one of its 5 captions"):
        type(memory)(memory.keys, None, memory.captions, key_caption=memory.key_caption + 1)
    with pytest.raises(ValueError, match="not one of the memory's captions"):
        build_caption_memory(["toilet"], aliases=[("loo", "lavatory")])


def test_shipped_emoji_search_words_name_base_emoji_and_never_repeat_a_caption() -> None:
    from t2i.data.emoji import emoji_search_words, load_emoji

    train, words = load_emoji(16, "train"), emoji_search_words("train")
    assert len(words) == len(train) and sum(map(bool, words)) > 0.9 * len(train)
    said = dict(zip(train.names, words))
    assert "frisbee" in said["flying disc"] and "cockerel" in said["rooster"]
    assert all(not set(w) & set(c) for w, c in zip(words, train.captions))
    assert all(words[i] == words[j] for i, j in zip(range(len(train) - 1), range(1, len(train))) if train.groups[i] == train.groups[j])


def test_caption_memory_is_saved_with_the_pipeline_and_used_by_sampling(tiny_run, tmp_path, capsys) -> None:
    from t2i.pipelines.loading import load_pipeline

    runs, out = tiny_run.runs, tmp_path / "with-memory"
    assert main(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"]),
                 "--upsampler", str(runs["upsampler"]), "--config", "tiny", "--fp32", "--caption-memory", str(tiny_run.data), "--memory-dims", "12", "-o", str(out)]) == 0
    stages = ["--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"])]
    assert main(["assemble", *stages, "--memory-dims", "12", "-o", str(tmp_path / "keys-alone")]) == 2  # keys of no memory
    assert "--memory-dims" in capsys.readouterr().err and not (tmp_path / "keys-alone").exists()
    assert main(["assemble", *stages, "--caption-memory", str(tiny_run.data), "--memory-dims", "400", "-o", str(tmp_path / "too-wide")]) == 2
    assert "from 1 to 384" in capsys.readouterr().err
    pipe = load_pipeline(out)
    assert len(pipe.memory) == 16 and pipe.memory.caption_count == 8  # 8 images × 2 captions, all distinct: each second caption stands for its name
    assert pipe.memory.keys.shape == (16, 12) and pipe.memory.text_embeds is None
    assert "grinning face with big eyes" in pipe.memory.captions and "smiley" not in pipe.memory.captions
    enc, text = pipe.encode_text(["grinning face with big eyes"])
    # an exact training caption is its own nearest neighbour: its embedding stays nearly where it was
    assert float((pipe.memory.blend(enc.pooled, text, 0.5, embed_text=lambda c: pipe.encode_text(c)[1]) * text).sum()) > 0.9
    opts = dict(prior_steps=2, decoder_steps=2, upsampler_steps=1, seed=3)
    a, b = pipe("a cute grinning face", caption_memory=0.0, **opts), pipe("a cute grinning face", caption_memory=1.0, **opts)
    assert not np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    # with the memory on, the decoder reads the nearest caption's tokens: given the same image
    # embedding, a prompt decodes exactly as its nearest caption does, and differently without the memory
    nearest = pipe.memory.nearest_captions(pipe.encode_text(["a cute grinning face"])[0].pooled)[0]
    assert nearest != "a cute grinning face"
    given = torch.nn.functional.normalize(torch.randn(1, text.shape[1], generator=torch.Generator().manual_seed(0)), dim=-1)
    draw = lambda prompt, w: np.asarray(pipe(prompt, image_embedding=given, caption_memory=w, **dict(opts, decoder_candidates=1))[0])  # noqa: E731
    assert np.array_equal(draw("a cute grinning face", 1.0), draw(nearest, 1.0))
    assert not np.array_equal(draw("a cute grinning face", 0.0), draw(nearest, 0.0))
    plain = load_pipeline(tiny_run.pipeline)
    assert plain.memory is None
    with pytest.raises(ValueError, match="caption memory"):
        plain("a cat", caption_memory=0.5, **opts)


def test_a_caption_of_one_emoji_stands_for_its_name() -> None:
    from t2i.data.dataset import ImageCaptionSet
    from t2i.pipelines.caption_memory import build_caption_memory, caption_aliases, memory_captions
    from t2i.text.encoder import get_text_encoder

    captions = [["grinning face with big eyes", "smiley", "yay"], ["clapping hands", "yay", "applause"], ["clapping hands: dark skin tone", "bravo"],
                ["glowing star", "star", "shiny"], ["star"]]
    data = ImageCaptionSet(np.zeros((5, 8, 8, 3), np.uint8), captions, groups=np.array([0, 1, 1, 2, 3]))
    # names hand on themselves ("star" too, though it also captions the glowing star), as does a caption of two emoji
    assert memory_captions(data) == ["clapping hands", "glowing star", "grinning face with big eyes", "star", "yay"]
    # "bravo" captions a skin-tone variant, which the memory does not keep (one image per group)
    assert caption_aliases(data) == [("smiley", "grinning face with big eyes"), ("applause", "clapping hands"), ("shiny", "glowing star")]
    memory = build_caption_memory(memory_captions(data), aliases=caption_aliases(data))
    assert len(memory) == 8 and memory.caption_count == 5
    prompts = get_text_encoder(32).encode(["smiley", "applause", "yay", "star"]).pooled
    assert memory.nearest_captions(prompts) == ["grinning face with big eyes", "clapping hands", "yay", "star"]
