"""Shapes world: renderer, placement, captions and the exact scorer agree with the spec.

The spec is docs/benchmarks/shapes-world.md. Captions are checked twice: against the
ground-truth objects by an independent parser of the caption grammar below, and (for the
benchmark templates) by the pixel scorer on the rendered image.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from t2i.data.shapes import (
    COLORS,
    GAP,
    HELD_OUT,
    MARGIN,
    PALETTE,
    RELATION_PARAPHRASES,
    RELATIONS,
    SHAPES,
    SIZES,
    ShapeObject,
    caption_scene,
    counting_scene,
    make_training_set,
    place_objects,
    random_scene,
    relation_holds,
    render_scene,
)
from t2i.data.shapes_eval import TASKS, EvalPrompt, canonical_prompts, connected_components, detect_objects, parse_prompt, scene_for_prompt, score_image, summarize

# ----------------------------------------------------------------------------- helpers

_NUMBERS = {"a": 1, "two": 2, "three": 3, "four": 4}
_NP = re.compile(rf"(a|two|three|four) (?:(small|large) )?(?:({'|'.join(COLORS)}) )?({'|'.join(SHAPES)})(s?)")
_RELATION_WORDS = {w: r for r in RELATIONS for w in (r, *RELATION_PARAPHRASES[r])}


def _np(text: str) -> tuple[int, str, str | None, str | None]:
    m = _NP.fullmatch(text)
    assert m, f"not a noun phrase: {text!r}"
    count, size, color, shape, plural = m.groups()
    assert (plural == "s") == (count != "a"), f"number disagreement in {text!r}"
    return _NUMBERS[count], shape, color, size


def _matches(obj: ShapeObject, shape: str, color: str | None, size: str | None) -> bool:
    return obj.shape == shape and color in (None, obj.color) and size in (None, obj.size)


def caption_is_true(caption: str, objects: list[ShapeObject], canvas: int) -> bool:
    """Independent reading of a caption: every object accounted for, every claim true."""
    for word in sorted(_RELATION_WORDS, key=len, reverse=True):
        left, sep, right = caption.partition(f" {word} ")
        if sep:
            (na, *a), (nb, *b) = _np(left), _np(right)
            assert na == nb == 1
            relation = _RELATION_WORDS[word]
            return len(objects) == 2 and any(
                _matches(x, *a) and _matches(y, *b) and relation_holds((x.cx, x.cy), (y.cx, y.cy), relation, canvas)
                for x, y in itertools.permutations(objects))
    phrases = [_np(p) for p in re.split(r", | and ", caption)]
    if sum(p[0] for p in phrases) != len(objects):
        return False

    def assign(rest: list, free: frozenset) -> bool:  # backtracking: phrase -> disjoint objects
        if not rest:
            return not free
        count, *attrs = rest[0]
        fits = [i for i in free if _matches(objects[i], *attrs)]
        return any(assign(rest[1:], free - set(c)) for c in itertools.combinations(fits, count))

    return assign(phrases, frozenset(range(len(objects))))


def _fails(image: np.ndarray, prompt: str) -> bool:
    return not score_image(image, prompt).passed


# ----------------------------------------------------------------------------- world and renderer


def test_world_constants_match_spec():
    assert PALETTE == {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
                       "yellow": (240, 200, 30), "purple": (150, 60, 190), "cyan": (30, 190, 200)}
    assert SHAPES == ("circle", "square", "triangle") and SIZES == {"small": 0.25, "large": 0.40}
    assert set(HELD_OUT) == {("purple", "triangle"), ("yellow", "square"), ("cyan", "circle")}
    assert RELATIONS == ("to the left of", "to the right of", "above", "below")


def test_render_is_antialiased_with_exact_colours():
    obj = ShapeObject("circle", "blue", "large", 32.0, 32.0)
    image = render_scene([obj], 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (255, 255, 255) and tuple(image[32, 32]) == PALETTE["blue"]
    colours = {tuple(p) for p in image.reshape(-1, 3)}
    assert len(colours) > 5, "edges should blend with the background"
    (d,) = detect_objects(image)
    assert (d.shape, d.color) == ("circle", "blue") and abs(d.cx - 32) < 0.5 and abs(d.cy - 32) < 0.5


@pytest.mark.parametrize("canvas", [32, 64])
def test_placement_rules_hold(canvas):
    rng = np.random.default_rng(1)
    counts = Counter()
    for _ in range(1500):
        scene = random_scene(rng, canvas)
        counts[len(scene)] += 1
        for o in scene:
            x0, y0, x1, y1 = o.bbox(canvas)
            assert min(x0, y0) >= MARGIN * canvas - 1e-9 and max(x1, y1) <= (1 - MARGIN) * canvas + 1e-9
            assert (o.color, o.shape) not in HELD_OUT
        for a, b in itertools.combinations(scene, 2):
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.bbox(canvas), b.bbox(canvas)
            assert max(bx0 - ax1, ax0 - bx1, by0 - ay1, ay0 - by1) >= GAP * canvas - 1e-9
    assert set(counts) == {1, 2, 3, 4}
    assert len(random_scene(rng, canvas, 4)) == 4
    with pytest.raises(ValueError, match="n_objects"):
        random_scene(rng, canvas, 5)


def test_training_set_is_deterministic_and_has_two_captions():
    a, b = make_training_set(40, 32, seed=7), make_training_set(40, 32, seed=7)
    assert a.images.shape == (40, 32, 32, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    assert not np.array_equal(a.images, make_training_set(40, 32, seed=8).images)
    assert all(len(c) == 2 and c[0] != c[1] for c in a.captions)
    assert canonical_prompts(10, seed=3) == canonical_prompts(10, seed=3)


def test_counting_scenes_join_the_training_set_from_their_own_stream():
    plain, more = make_training_set(30, 32, seed=7), make_training_set(30, 32, seed=7, counting=40)
    assert more.images.shape == (70, 32, 32, 3)
    assert np.array_equal(more.images[:30], plain.images) and more.captions[:30] == plain.captions  # the plain scenes stay
    fewer = make_training_set(30, 32, seed=7, counting=10)
    assert np.array_equal(fewer.images[30:], more.images[30:40]) and fewer.captions[30:] == more.captions[30:40]
    numbers = Counter()
    for image, captions in zip(more.images[30:], more.captions[30:]):
        found = detect_objects(image)
        assert len({d.shape for d in found}) == 1 and 2 <= len(found) <= 4  # one shape, said 2-4 times
        assert len(captions) == 2 and captions[0] != captions[1]
        numbers[len(found)] += 1
    assert set(numbers) == {2, 3, 4}
    rng = np.random.default_rng(0)
    for _ in range(100):  # their captions are true, as every training scene's
        scene = counting_scene(rng, 32)
        assert caption_is_true(caption_scene(scene, rng, 32), scene, 32)


# ----------------------------------------------------------------------------- captions


def test_no_held_out_pair_in_training_data():
    data = make_training_set(2000, 32, seed=11)
    pattern = re.compile("|".join(f"{c} {s}" for c, s in HELD_OUT))
    assert not [c for caps in data.captions for c in caps if pattern.search(c)]
    found = Counter((d.color, d.shape) for image in data.images for d in detect_objects(image))
    assert not set(found) & set(HELD_OUT)
    assert sum(found.values()) > 4000  # the images really were scanned


@pytest.mark.parametrize("canvas", [32, 64])
def test_every_caption_is_true(canvas):
    rng = np.random.default_rng(canvas)
    canonical = Counter()
    for _ in range(400):
        scene = random_scene(rng, canvas)
        image = render_scene(scene, canvas)
        for _ in range(6):
            caption = caption_scene(scene, rng, canvas)
            assert caption_is_true(caption, scene, canvas), (caption, scene)
            try:
                task = parse_prompt(caption).task
            except ValueError:
                continue
            canonical[task] += 1
            result = score_image(image, caption)
            assert result.passed, (caption, result.reason)
    assert set(canonical) == set(TASKS) and sum(canonical.values()) > 500


def test_caption_checker_catches_lies():
    scene = [ShapeObject("circle", "red", "large", 12.0, 32.0), ShapeObject("square", "blue", "small", 48.0, 32.0)]
    assert caption_is_true("a large red circle to the left of a square", scene, 64)
    assert caption_is_true("a square and a red circle", scene, 64)
    for lie in ("a circle to the right of a square", "a red circle", "a blue circle and a square",
                "two circles", "a small circle and a square", "a circle above a square"):
        assert not caption_is_true(lie, scene, 64), lie


# ----------------------------------------------------------------------------- scorer


@pytest.mark.parametrize("canvas", [32, 64])
def test_scorer_passes_ground_truth_scenes(canvas):
    rng = np.random.default_rng(100 + canvas)
    prompts = canonical_prompts(per_task=50, seed=1)
    passed = [score_image(render_scene(scene_for_prompt(p.prompt, rng, canvas), canvas), p.prompt).passed
              for p in prompts]
    assert np.mean(passed) >= 0.99


@pytest.mark.parametrize("canvas", [32, 64])
def test_scorer_fails_one_attribute_changed(canvas):
    rng = np.random.default_rng(200 + canvas)
    outcomes = Counter()
    for p in canonical_prompts(per_task=12, seed=2):
        parsed = parse_prompt(p.prompt)
        scene = scene_for_prompt(p.prompt, rng, canvas)
        i = int(rng.integers(len(scene)))
        other_shape = [s for s in SHAPES if s != scene[i].shape][int(rng.integers(2))]
        mutants = {"shape": scene[:i] + [replace(scene[i], shape=other_shape)] + scene[i + 1:]}
        named = [k for k, (_, c) in enumerate(parsed.objects) if c is not None]
        if named:
            k = named[int(rng.integers(len(named)))]
            colour = [c for c in COLORS if c != scene[k].color][int(rng.integers(5))]
            mutants["colour"] = scene[:k] + [replace(scene[k], color=colour)] + scene[k + 1:]
        if len(scene) > 1:
            mutants["fewer"] = scene[:-1]
        if len(scene) < 4:
            extra = (COLORS[int(rng.integers(6))], SHAPES[int(rng.integers(3))])
            mutants["more"] = place_objects(rng, canvas, [(o.color, o.shape) for o in scene] + [extra])
        if parsed.relation is not None:  # mirror the layout: the relation turns into its opposite
            axis = "cx" if "left" in parsed.relation or "right" in parsed.relation else "cy"
            mutants["relation"] = [replace(o, **{axis: canvas - getattr(o, axis)}) for o in scene]
        for kind, mutant in mutants.items():
            outcomes[kind, _fails(render_scene(mutant, canvas), p.prompt)] += 1
    for kind in ("shape", "colour", "fewer", "more", "relation"):
        assert outcomes[kind, True] >= 5 and outcomes[kind, False] == 0, (kind, outcomes)


def test_swapped_relation_prompt_fails():
    rng = np.random.default_rng(5)
    opposite = dict(zip(RELATIONS, ("to the right of", "to the left of", "below", "above")))
    for a, b in itertools.permutations(SHAPES, 2):
        for relation in RELATIONS:
            image = render_scene(scene_for_prompt(f"a {a} {relation} a {b}", rng, 64), 64)
            assert score_image(image, f"a {a} {relation} a {b}").passed
            assert _fails(image, f"a {a} {opposite[relation]} a {b}")
            assert _fails(image, f"a {b} {relation} a {a}")


def test_score_reasons_and_unknown_shapes():
    image = render_scene([ShapeObject("square", "red", "small", 20.0, 20.0),
                          ShapeObject("square", "red", "small", 44.0, 44.0)], 64)
    result = score_image(image, "three squares")
    assert not result.passed and result.task == "counting" and "expected 3 object(s), found 2" in result.reason
    assert score_image(image, "two squares").passed
    bar = np.full((64, 64, 3), 255, np.uint8)
    bar[10:14, 5:40] = PALETTE["green"]  # a thin bar: aspect outside [0.7, 1.4]
    (d,) = detect_objects(bar)
    assert d.shape == "unknown" and d.color == "green"
    assert "unknown shape" in score_image(bar, "a green square").reason
    assert detect_objects(np.full((32, 32, 3), 255, np.uint8)) == []
    speck = np.full((64, 64, 3), 255, np.uint8)
    speck[5:7, 5:7] = PALETTE["red"]  # area 4 < 0.015·S² is dropped
    assert detect_objects(speck) == []
    with pytest.raises(ValueError, match="uint8"):
        detect_objects(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="side >= 32"):
        detect_objects(np.zeros((16, 16, 3), np.uint8))


def test_connected_components_matches_flood_fill():
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(-1, 2, size=(23, 17))
        comp = connected_components(labels)
        reference = -np.ones_like(labels)
        for start in zip(*np.nonzero(labels >= 0)):
            if reference[start] >= 0:
                continue
            stack, reference[start] = [start], start[0] * 17 + start[1]
            while stack:
                y, x = stack.pop()
                for dy, dx in itertools.product((-1, 0, 1), repeat=2):
                    v, u = y + dy, x + dx
                    if 0 <= v < 23 and 0 <= u < 17 and reference[v, u] < 0 and labels[v, u] == labels[y, x]:
                        reference[v, u] = reference[start]
                        stack.append((v, u))
        assert np.array_equal(comp, reference)  # both name a component by its first pixel


def test_parse_prompt_templates_and_errors():
    assert parse_prompt("a red circle").objects == (("circle", "red"),)
    assert parse_prompt("three squares").objects == (("square", None),) * 3
    assert parse_prompt("a circle below a triangle").relation == "below"
    assert parse_prompt("A  Red circle and a blue square").task == "attribute_binding"
    for bad in ("a circle and a circle", "a red circle and a red square", "five circles", "a big circle",
                "a circle to the left of a circle"):
        with pytest.raises(ValueError):
            parse_prompt(bad)


def test_canonical_prompts_and_summary():
    prompts = canonical_prompts(per_task=50, seed=0)
    per = Counter((p.task, p.held_out) for p in prompts)
    assert all(per[t, False] == 50 for t in TASKS) and per["colors", True] == per["attribute_binding", True] == 50
    held = re.compile("|".join(f"{c} {s}" for c, s in HELD_OUT))
    assert all(p.held_out == bool(held.search(p.prompt)) for p in prompts)
    assert {p.prompt for p in prompts if p.task == "single_object"} == {"a circle", "a square", "a triangle"}
    results = [(p, p.task != "counting" and not p.held_out) for p in prompts[:-1]]
    results.append((EvalPrompt("colors", "a cyan circle", True), True))
    summary = summarize(results)
    assert summary["counting"] == 0.0 and summary["colors"] == 1.0
    assert summary["overall"] == pytest.approx(5 / 6)
    assert summary["held_out"] == pytest.approx(1 / 100) and summary["held_out_colors"] == pytest.approx(1 / 51)
