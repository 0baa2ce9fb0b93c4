"""Phrase-wise token states (t2i.text.phrases): which spans a list joins, and what mixing does to them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import pixels

import t2i
from t2i.cli import main
from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError
from t2i.text.encoder import get_text_encoder
from t2i.text.phrases import mix_phrase_states, phrase_spans
from t2i.train.captions import CaptionTable

FAST = {"base_steps": 3, "sr_steps": 2}


@pytest.mark.parametrize("caption, phrases", [
    ("a green circle and a yellow square", ["a green circle", "a yellow square"]),
    ("  a cyan circle AND a purple triangle and a red square ", ["a cyan circle", "a purple triangle", "a red square"]),
    ("two circles", []),
    ("a sandy band and", []),  # "and" inside words, or with nothing after it, joins nothing
    ("a red circle, a blue square & a cyan triangle", ["a red circle", "a blue square", "a cyan triangle"]),
    ("a circle, and a square too", ["a circle", "a square too"]),
    ("RED TRIANGLE + BLUE SQUARE", ["RED TRIANGLE", "BLUE SQUARE"]),
    ("a circle as well as a square with a triangle", ["a circle", "a square", "a triangle"]),
    ("one circle, all red", []),  # a comma splits only between two items that each have an article or a number
    ("circles, three of them", []),
    ("a circle, please", []),
])
def test_a_list_splits_a_caption_into_its_phrases(caption: str, phrases: list[str]) -> None:
    assert [caption[a:b] for a, b in phrase_spans(caption)] == phrases


@torch.no_grad()
def test_each_phrase_span_mixes_towards_that_phrase_encoded_alone() -> None:
    encoder = get_text_encoder(32)
    captions = ["a green circle and a cyan square", "two circles"]
    enc = encoder.encode(captions)
    alone = encoder.encode(["a green circle", "a cyan square"])
    full = mix_phrase_states(encoder, captions, enc, 1.0)
    # [CLS] a green circle and a cy ##an square [SEP]: the phrases are positions 1-3 and 5-8
    assert torch.allclose(full.tokens[0, 1:4], alone.tokens[0, 1:4], atol=1e-5)
    assert torch.allclose(full.tokens[0, 5:9], alone.tokens[1, 1:5], atol=1e-5)
    for same in ([0, 4, 9], slice(None)):  # [CLS], "and", [SEP]; a caption without "and"
        row = 0 if isinstance(same, list) else 1
        assert torch.equal(full.tokens[row, same], enc.tokens[row, same])
    assert torch.equal(full.pooled, enc.pooled) and torch.equal(full.mask, enc.mask)
    half = mix_phrase_states(encoder, captions, enc, 0.5)
    assert torch.allclose(half.tokens[0, 2], (enc.tokens[0, 2] + alone.tokens[0, 2]) / 2, atol=1e-5)
    assert mix_phrase_states(encoder, captions, enc, 0.0) is enc
    with pytest.raises(ValueError, match="between 0 and 1"):
        mix_phrase_states(encoder, captions, enc, 1.5)


def test_a_phrase_cut_by_truncation_is_left_as_it_is() -> None:
    encoder = get_text_encoder(8)
    caption = ["a green circle and a yellow square"]  # 9 tokens: [SEP] replaces "square"
    with pytest.warns(UserWarning, match="truncated"):
        enc = encoder.encode(caption)
        mixed = mix_phrase_states(encoder, caption, enc, 1.0)
    assert not torch.equal(mixed.tokens[0, 1:4], enc.tokens[0, 1:4]) and torch.equal(mixed.tokens[0, 4:], enc.tokens[0, 4:])


def test_an_imagen_pipeline_mixes_phrases_on_request(tiny_imagen, tmp_path, capsys) -> None:
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    assert pipe.defaults.phrase_mix == 0.0
    joined, single = "a red apple and a blue car", "a red apple"
    plain = pixels(pipe([joined, single], seed=2, **FAST))
    mixed = pixels(pipe([joined, single], seed=2, phrase_mix=0.7, **FAST))
    assert not np.array_equal(plain[0], mixed[0]) and np.array_equal(plain[1], mixed[1])
    assert main(["generate", joined, "--model", str(tiny_imagen.pipeline), "--phrase-mix", "2", "-o", str(tmp_path / "x.png")]) == 2
    assert "phrase-mix must be between 0 and 1" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def _table(phrase_mix: float) -> CaptionTable:
    captions = [["a red circle and a blue square"], ["a green triangle"]]
    return CaptionTable(ImageCaptionSet(np.zeros((2, 8, 8, 3), np.uint8), captions), phrase_mix=phrase_mix)


def test_training_mixes_phrases_by_a_seeded_draw_and_only_in_captions_with_and() -> None:
    table, plain = _table(1.0), _table(0.0)
    rows = table.draw(torch.tensor([0, 1, 0, 1]), torch.Generator().manual_seed(0))
    sentence = plain.batch(rows)
    first, again = (table.batch(rows, torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(first.tokens, again.tokens)  # deterministic in the generator's state
    assert torch.equal(plain.batch(rows, torch.Generator().manual_seed(5)).tokens, sentence.tokens)  # off: no draw, no change
    assert torch.equal(table.batch(rows).tokens, sentence.tokens)  # no generator (previews, evaluation): the sentence
    assert torch.equal(first.tokens[[1, 3]], sentence.tokens[[1, 3]])  # no "and": unchanged
    moved = (first.tokens[[0, 2]] - sentence.tokens[[0, 2]]).abs().amax(-1)
    assert (moved[:, [0, 4]] == 0).all() and (moved[:, 1:4] > 0).all()  # [CLS] and "and" stay, the phrases move
    # the weight is drawn per row: the two rows of one caption moved by different amounts
    full = table.phrase_tokens[0, : sentence.tokens.shape[1]].float() - sentence.tokens[0]
    w = [float(((first.tokens[i] - sentence.tokens[i]) * full).sum() / (full * full).sum()) for i in (0, 2)]
    assert 0 < w[0] < 1 and 0 < w[1] < 1 and abs(w[0] - w[1]) > 1e-3
    with pytest.raises(InputError, match="phrase_mix must be a chance"):
        _table(1.5)
