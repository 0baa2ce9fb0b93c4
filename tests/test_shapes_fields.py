"""Counts and attributes said as labels: "circles (x3)", "circle: red", "three circles, not four"."""
from __future__ import annotations

import re

import numpy as np

from t2i.data.shapes import training_captions
from t2i.text.shapes_fields import bracketed_count, negated_count, said_as_fields
from t2i.text.shapes_wording import FIELD_WORDINGS, Group, parse_caption, wordings

NUMBER = {"one": 1, "1": 1, "single": 1, "two": 2, "2": 2, "three": 3, "3": 3, "four": 4, "4": 4}
_NUMBER = re.compile(r"\b(one|single|two|three|four)\b|(?<![a-wyz\d])([1-4])(?!\d)")  # "x3" and "3x" are counts


def numbers(text: str) -> list[int]:
    return [NUMBER[m.group(1) or m.group(2)] for m in _NUMBER.finditer(text)]


def test_a_negated_count_rules_out_other_counts_and_states_the_scenes() -> None:
    for n in range(1, 5):
        for seed in range(200):
            text = negated_count(np.random.default_rng(seed), Group(n, None, "red", "circle"))
            ruled_out = re.findall(r"\bnot ((?:\w+)(?: or \w+)?)", text)
            assert ruled_out, text
            wrong = [NUMBER[w] for part in ruled_out for w in part.split(" or ")]
            assert n not in wrong and wrong, text  # never the scene's own count
            stated = re.sub(r"\bnot \w+(?: or \w+)?", "", text)
            assert set(numbers(stated)) <= {n}, text  # every count not ruled out is the scene's
            assert n > 1 or "circles" not in text and re.search(r"\b(one|1|single|a)\b", stated), text


def test_a_bracketed_count_says_only_the_scenes_count() -> None:
    said = []
    for n in range(2, 5):
        for seed in range(100):
            text = bracketed_count(np.random.default_rng(seed), Group(n, "large", "blue", "square"))
            assert set(numbers(text)) == {n} and "blue" in text and "large" in text and "square" in text, text
            said.append(text)
    for form in ("(3)", "(x4)", "three (3)", "count: 2", "number of", "shape: square", "(four of them)"):
        assert any(form in t for t in said), form


def test_a_relation_said_as_labels_keeps_its_sides_and_each_colour_on_its_shape() -> None:
    scene = parse_caption("a red circle to the right of a blue square")
    for seed in range(300):
        text = said_as_fields(np.random.default_rng(seed), scene)
        # every colour is said in brackets right after its own shape
        assert re.search(r"circle [(\[]red[)\]]", text) and re.search(r"square [(\[]blue[)\]]", text), text
        square, circle = text.index("square"), text.index("circle")
        places = re.findall(r"\b(left|right)\b", text)
        if places == ["left", "right"] or places == ["left"]:  # "square (blue) left of circle (red)", "left: ..., right: ..."
            assert square < circle, text
        elif "left" in places:  # "square (blue) = left, circle (red) = right" said with the labels first
            assert text.index("left") > square and text.index("right") > circle, text


def test_every_caption_gets_field_wordings_that_name_its_scene() -> None:
    captions = sorted({c for caps in training_captions(600, 32, 3) for c in caps})
    fields = [w for c in captions for w in wordings(c)[-FIELD_WORDINGS:]]
    assert len(fields) == FIELD_WORDINGS * len(captions)
    text = " | ".join(fields)
    for form in (": red", ", not ", "shape: ", "1x ", " + ", "objects: ", "left: ", "not two but", "exactly"):
        assert form in text, form
    for caption in captions:
        scene = parse_caption(caption)
        if scene.relation is None and len(scene.groups) == 1 and scene.groups[0].count > 1:
            for wording in wordings(caption)[-FIELD_WORDINGS:]:
                assert scene.groups[0].count in numbers(wording), (caption, wording)
