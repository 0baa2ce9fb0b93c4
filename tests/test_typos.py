"""Typing errors for training wordings: one edit of a word, mostly a scene word, never a world word."""
from __future__ import annotations

import re

import numpy as np

from t2i.data.shapes import COLORS, SHAPES, training_captions
from t2i.text import shapes_wording
from t2i.text.shapes_wording import TYPO_WORDINGS, wordings
from t2i.text.typos import SECOND_TYPO_ODDS, misspell_word, misspelt


def _one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance 1: a letter swapped with its neighbour, dropped, added or replaced."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return (a[i + 1:] == b[i + 1:] or a[i + 1:] == b[i:] or a[i:] == b[i + 1:]
            or (a[i:i + 2] == b[i:i + 2][::-1] and a[i + 2:] == b[i + 2:]))


def test_a_misspelt_word_is_one_typing_error_away_never_at_its_first_letter() -> None:
    rng = np.random.default_rng(0)
    for word in ("circle", "triangle", "square", "yellow", "blue", "Purple"):
        typos = {misspell_word(rng, word) for _ in range(200)}
        assert len(typos) > 8 and all(_one_edit_apart(word, t) and t[0] == word[0] for t in typos), (word, typos)
    assert "trianlge" in {misspell_word(rng, "triangle") for _ in range(400)}  # the swap people make


def test_misspelt_prefers_the_scene_words_and_never_makes_a_world_word() -> None:
    prefer = re.compile("circles?|blue|green")
    rng, text = np.random.default_rng(1), "please draw two blue circles beside the picture frame"
    outs = [misspelt(rng, text, prefer, keep=frozenset({"blue", "green"})) for _ in range(400)]
    changed = [[(a, b) for a, b in zip(text.split(), out.split()) if a != b] for out in outs]
    assert all(1 <= len(c) <= 2 and all(_one_edit_apart(a, b) for a, b in c) for c in changed)
    assert np.mean([any(a in ("blue", "circles") for a, _ in c) for c in changed]) == 1.0  # a scene word every time
    assert abs(np.mean([len(c) == 2 for c in changed]) - SECOND_TYPO_ODDS) < 0.07
    assert misspelt(np.random.default_rng(2), text, prefer) == misspelt(np.random.default_rng(2), text, prefer)  # seeded
    assert misspelt(rng, "a red cat", prefer) == "a red cat"  # no word of four letters: nothing to misspell
    every_typo = frozenset(misspell_word(np.random.default_rng(s), "blue") for s in range(500))
    assert {misspelt(np.random.default_rng(s), "blue", prefer, keep=every_typo) for s in range(50)} == {"blue"}  # kept


def test_every_shapes_caption_gets_a_wording_with_a_typo(monkeypatch) -> None:
    assert TYPO_WORDINGS == 1
    monkeypatch.setattr(shapes_wording, "FIELD_WORDINGS", 0)  # they come after it
    words = lambda text, vocabulary: {w for w in vocabulary if re.search(rf"\b{w}", text)}  # noqa: E731
    misspelt_scene, captions = 0, sorted({c for caps in training_captions(300, 32, 1) for c in caps})
    for caption in captions:
        typo = wordings(caption)[-1]
        for vocabulary in (COLORS, SHAPES):  # a typo may hide a colour or shape, never name another
            assert words(typo, vocabulary) <= words(caption, vocabulary), (caption, typo)
        misspelt_scene += words(typo, (*COLORS, *SHAPES)) != words(caption, (*COLORS, *SHAPES))
    assert misspelt_scene > 0.5 * len(captions)  # mostly a word of the scene (sizes, counts and places are others)
    for caption in ("two red circles", "a blue square to the left of a green triangle", "a circle"):
        typo = wordings(caption)[-1]
        words = set(re.findall(r"[a-z]+", " ".join(wordings(caption)[:-1]) + " " + caption))
        assert [w for w in re.findall(r"[a-z]+", typo.lower()) if w not in words], typo  # a word no other wording says
