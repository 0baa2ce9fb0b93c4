"""The shapes captions' other wordings: parsed back into their scene, said again, still true."""
from __future__ import annotations

import re

import numpy as np

from t2i.data.shapes import COLORS, SHAPES, training_captions
from t2i.text import context_words, shapes_wording
from t2i.text.augment import SHAPES_TEMPLATES, caption_variants
from t2i.text.held_out import evaluation_prompts, normalize_prompt
from t2i.text.shapes_wording import (
    CONTEXT_PER_CAPTION,
    FIELD_WORDINGS,
    OTHER_NAMES,
    SYNONYM_MAX_WORDS,
    SYNONYM_WORDINGS,
    TYPO_WORDINGS,
    WORDINGS_PER_CAPTION,
    Group,
    Scene,
    _say_relation,
    parse_caption,
    wordings,
)
from t2i.text.synonyms import COLOUR_NAMES, SHAPE_NAMES, SIZE_NAMES

# every other word for a shape, colour or size -> its own ("round shapes" -> "circle", "scarlet" -> "red"), longest first
OTHER_WORDS = sorted({**{n: shape for shape, names in OTHER_NAMES.items() for n in names},
                      **{n: shape for shape, pairs in SHAPE_NAMES.items() for pair in pairs for n in pair},
                      **{n: word for table in (COLOUR_NAMES, SIZE_NAMES) for word, names in table.items() for n in names}}.items(),
                     key=lambda item: -len(item[0]))


def plain_names(wording: str) -> str:
    """A wording with the other words for shapes, colours and sizes ("a round shape", "two scarlet discs") back to theirs."""
    for name, plain in OTHER_WORDS:
        wording = re.sub(rf"\b{re.escape(name)}\b", plain, wording)
    return wording


def test_captions_parse_back_into_their_scene() -> None:
    assert parse_caption("two large red circles") == Scene((Group(2, "large", "red", "circle"),))
    assert parse_caption("a circle, two squares and a blue triangle") == Scene(
        (Group(1, None, None, "circle"), Group(2, None, None, "square"), Group(1, None, "blue", "triangle")))
    assert parse_caption("a small circle beneath a green triangle") == Scene(
        (Group(1, "small", None, "circle"), Group(1, None, "green", "triangle")), "below")
    # anything else is not a scene: emoji names, broken lists, plural relations
    for text in ("red apple", "a button", "flag of trinidad and tobago", "a circles", "two circle", "a circle, a square",
                 "two circles above a square", "a circle and two"):
        assert parse_caption(text) is None, text
    assert wordings("red apple") == []


def test_every_training_caption_gets_its_wordings_the_same_way_each_time() -> None:
    captions = sorted({c for caps in training_captions(2000, 32, 0) for c in caps})
    assert all(parse_caption(c) is not None for c in captions)
    said = {c: wordings(c) for c in captions}
    assert said == {c: wordings(c) for c in captions}  # seeded by the caption alone
    extra = CONTEXT_PER_CAPTION + SYNONYM_WORDINGS + TYPO_WORDINGS + FIELD_WORDINGS
    assert 5 + extra <= np.mean([len(w) for w in said.values()]) <= WORDINGS_PER_CAPTION + extra + 1  # + other names
    assert all(c not in w for c, w in said.items())
    # they reach training: a caption's variants hold its wordings, less any evaluation prompt
    # (tests/test_natural_prompts.py checks that none is one)
    for caption in captions[:50]:
        kept = {w for w in wordings(caption) if normalize_prompt(w) not in evaluation_prompts()}
        assert kept <= set(caption_variants(caption, SHAPES_TEMPLATES))


def test_a_wording_names_every_colour_and_shape_of_its_scene_and_no_other(monkeypatch) -> None:
    monkeypatch.setattr(shapes_wording, "TYPO_WORDINGS", 0)  # a misspelt one may name fewer (tests/test_typos.py)
    words = lambda text, vocabulary: {w for w in vocabulary if re.search(rf"\b{w}", text)}  # noqa: E731 ("circles" names a circle)
    for caption in sorted({c for caps in training_captions(1000, 32, 1) for c in caps}):
        for wording in map(plain_names, wordings(caption)):
            assert words(wording, COLORS) == words(caption, COLORS), (caption, wording)
            assert words(wording, SHAPES) == words(caption, SHAPES), (caption, wording)


def test_counts_are_said_as_words_numerals_or_collective_nouns() -> None:
    captions = [f"{n} {size}{colour}{shape}s" for n in ("two", "three", "four") for size in ("", "large ") for colour in ("", "red ")
                for shape in SHAPES]
    said = " | ".join(w for caption in captions for w in wordings(caption))
    for form in ("three", "3 ", "a trio of", "of them", "a pair of", "a couple of", "2 ", "a quartet of", "exactly", " x3", "4x "):
        assert form in said, form
    assert not re.search(r"\bone\b|\ba triangle\b", said.replace("no more, no less", ""))  # no count said as one


def test_a_relation_turned_around_is_the_same_scene() -> None:
    """'a circle to the left of a square' may be said from the square ('a square to the right of
    a circle', 'a square, and to its left a circle', 'a square, then a circle left of it') or as places ('left: circle, right: square');
    in each, the circle must end up on the left."""
    scene = parse_caption("a circle to the left of a square")
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        text = _say_relation(rng, scene)
        c, s = text.index("circle"), text.index("square")
        side = re.search(r"\b(its (left|right)|(left|right) of (it|that)|further (left|right)(?! than))\b", text)
        if side:  # "Y, and to its left X", "Y, then X left of it", "Y with X further right"
            assert ("left" in side.group(0)) == (s < c), text
        elif re.search(r"\b((left|right) of|(left|right) than)\b", text):  # "X left of Y", "X on the right side of Y", "X further left than Y"
            assert ("left" in text) == (c < s), text
        elif re.search(r"\bleft\b.*\bright\b", text):  # "left: X, right: Y", "X on the left, Y on the right"
            assert c < s, text
        else:
            continue
        checked += 1
    assert checked > 200


def test_a_scene_said_with_its_number_of_shapes_says_the_right_number() -> None:
    """'three shapes: a circle and two squares' must count every object of the scene; one group of
    several ('three circles') is never given a total, and a lone object is 'one shape'."""
    number = {"one": 1, "1": 1, "a single": 1, "two": 2, "2": 2, "three": 3, "4": 4, "3": 3, "four": 4}
    said_total = re.compile(r"\b(one|1|a single|two|2|three|3|four|4) (shapes?|objects?)\b")
    captions, checked = sorted({c for caps in training_captions(1000, 32, 2) for c in caps}), 0
    for caption in captions:
        scene = parse_caption(caption)
        total = sum(g.count for g in scene.groups)
        for wording in wordings(caption):
            found = said_total.search(wording)  # "one shape only", "just one shape" are said as "one shape"
            if found:
                assert number[found.group(1)] == total and not (len(scene.groups) == 1 and total > 1), (caption, wording)
                checked += 1
    assert checked > 100
    # and the other new words reach the wordings
    said = " | ".join(w for c in captions for w in wordings(c))
    for form in ("a collection of", "separate", "no other shapes", "clip art", "diagram", " shape", "shapes in total"):
        assert form in said, form


def test_colours_said_in_a_later_clause_go_to_the_right_shapes(monkeypatch) -> None:
    """'a circle and a square; the circle is red, the square blue', 'make the square blue',
    '… red and blue respectively', 'two squares, make them blue': each colour named after the
    shapes must be the one its shape has in the caption."""
    monkeypatch.setattr(shapes_wording, "TYPO_WORDINGS", 0)  # a misspelt colour or shape is not said back
    colour = "|".join(COLORS)
    named = re.compile(rf"\bthe ({'|'.join(SHAPES)})s? (?:is |are |should be |in )?({colour})\b")
    pronoun = re.compile(rf"\b(?:it|them|they|each)(?: is| are| should(?: all)? be|)? ({colour})\b|color: ({colour})")
    captions, seen = sorted({c for caps in training_captions(3000, 32, 3) for c in caps}), {"named": 0, "respectively": 0, "pronoun": 0}
    for caption in captions:
        scene = parse_caption(caption)
        colour_of = {g.shape: g.color for g in scene.groups}
        if len(colour_of) < len(scene.groups):  # "the square" would not say which; such scenes keep their colours in place
            continue
        for wording in map(plain_names, wordings(caption)):
            if "respectively" in wording:  # the shapes are said without colours, so every colour word is the clause's
                order = sorted(scene.groups, key=lambda g: wording.index(g.shape))
                assert re.findall(rf"\b({colour})\b", wording) == [g.color for g in order], (caption, wording)
                seen["respectively"] += 1
            elif named.search(wording) and len(scene.groups) > 1:
                for shape, said in named.findall(wording):
                    assert colour_of[shape] == said, (caption, wording)
                seen["named"] += 1
            elif len(scene.groups) == 1 and pronoun.search(wording):
                assert [c for c in pronoun.search(wording).groups() if c] == [scene.groups[0].color], (caption, wording)
                seen["pronoun"] += 1
    assert min(seen.values()) >= 10, seen


def test_context_words_name_nothing_a_picture_could_show() -> None:
    """'for my slides, …' must be true of every picture: no colour, size, number, shape or place
    ("white", "two", "shapes", "left", "corner", "middle"), so a scene's words are its own."""
    scene_words = {*COLORS, *SHAPES, "small", "little", "large", "big", "tiny", "huge", "white", "black", "grey", "gray", "one", "two",
                   "three", "four", "single", "pair", "couple", "both", "few", "several", "shape", "object", "figure", "dot", "line",
                   "left", "right", "top", "bottom", "above", "below", "under", "over", "beneath", "underneath", "atop", "higher", "lower",
                   "beside", "centre", "center", "middle", "corner", "side", "next"}
    lists = {name: getattr(context_words, name) for name in ("BEFORE", "AFTER", "SENTENCES", "REQUESTS")}
    for name, phrases in lists.items():
        assert len(phrases) >= 30 and len(set(phrases)) == len(phrases), name
        for phrase in phrases:
            words = set(re.findall(r"[a-z]+", phrase))
            assert not (words | {w.removesuffix("s") for w in words}) & scene_words and not re.search(r"\d", phrase), (name, phrase)
            assert len(phrase.split()) <= 8, phrase


def test_some_wordings_come_among_context_words(monkeypatch) -> None:
    """CONTEXT_PER_CAPTION more wordings of each caption, each among words that leave the picture
    alone, added after the others, which stay as they were; every kind (before the scene, after
    it, a sentence, a request) is used."""
    captions = sorted({c for caps in training_captions(1000, 32, 4) for c in caps})
    said = {c: wordings(c) for c in captions}
    monkeypatch.setattr(shapes_wording, "CONTEXT_PER_CAPTION", 0)
    used, added = dict.fromkeys(("BEFORE", "AFTER", "SENTENCES", "REQUESTS"), 0), 0
    for caption in captions:
        plain = wordings(caption)
        extra = [w for w in said[caption] if w not in plain]
        assert [w for w in said[caption] if w in plain] == plain  # the others unchanged, in order
        for wording in extra:
            kinds = {name for name in used for phrase in getattr(context_words, name) if phrase.strip(", ") in wording}
            assert kinds - {"REQUESTS"}, (caption, wording)  # a request alone is not context
            for name in kinds:
                used[name] += 1
        added += len(extra)
    assert added >= 0.95 * CONTEXT_PER_CAPTION * len(captions) and min(used.values()) > 50, (added, len(captions), used)


def test_circles_and_triangles_are_also_called_by_other_names(monkeypatch) -> None:
    """One more wording of a caption with a circle or a triangle calls each by another name, and
    counts stay counts: "two round shapes" for two circles, never "two round shape"."""
    monkeypatch.setattr(shapes_wording, "SYNONYM_WORDINGS", 0)  # those say some shapes in other words, some not
    captions = sorted({c for caps in training_captions(1000, 32, 5) for c in caps})
    named = [w for c in captions for w in wordings(c) if re.search(r"\b(round|circular|triangular|three-sided) shape", w)]
    assert len(named) > 0.5 * len(captions)
    said = " | ".join(named)
    for name in ("round shape", "circular shape", "triangular shape", "three-sided shape", "round shapes", "three-sided shapes"):
        assert name in said, name
    assert not re.search(r"\b(?:two|three|four|2|3|4|pair of|couple of) (?:\w+ )?(?:round|circular|triangular|three-sided) shape\b", said)
    assert "shape shape" not in said and "circle" not in said and "triangle" not in said


def test_shapes_colours_and_sizes_are_also_said_in_other_words(monkeypatch) -> None:
    """SYNONYM_WORDINGS more wordings of each caption say its shapes, colours and sizes in other
    everyday words, after the others, which stay as they were; every word of the lexicon is used,
    counts keep their plurals, articles agree ("an emerald disc"), and said back in the plain
    words each is its caption's scene, sizes too."""
    monkeypatch.setattr(shapes_wording, "TYPO_WORDINGS", 0)  # they come after these
    monkeypatch.setattr(shapes_wording, "FIELD_WORDINGS", 0)
    captions = sorted({c for caps in training_captions(3000, 32, 6) for c in caps})
    said = {c: wordings(c) for c in captions}
    monkeypatch.setattr(shapes_wording, "SYNONYM_WORDINGS", 0)
    other = []
    for caption in captions:
        plain = wordings(caption)
        assert said[caption][:len(plain)] == plain  # the others unchanged, in order
        other += [(caption, w) for w in said[caption][len(plain):]]
    assert len(other) >= 0.95 * SYNONYM_WORDINGS * len(captions)
    assert np.mean([len(w.split()) <= SYNONYM_MAX_WORDS for _, w in other]) > 0.8  # within the text encoder's 32 tokens (4 shapes may not fit)
    text = " | ".join(w for _, w in other)
    lexicon = [n for pairs in SHAPE_NAMES.values() for pair in pairs for n in pair] + [n for t in (COLOUR_NAMES, SIZE_NAMES) for ns in t.values() for n in ns]
    assert [n for n in lexicon if not re.search(rf"\b{re.escape(n)}\b", text)] == []
    # a circle is sometimes named twice, its own name or another after "round" or "circular"
    assert all(re.search(rf"\b{a} {n}s?\b", text) for a in ("round", "circular") for n in ("circle", "disc", "disk"))
    singular = "|".join(re.escape(pair[0]) for pairs in SHAPE_NAMES.values() for pair in pairs)
    assert not re.search(rf"\b(?:two|three|four|2|3|4|pair of|couple of) (?:[\w-]+ )?(?:{singular})\b(?! (?:tile|shape|figure|form))", text)
    assert not re.search(r"\ban [^aeiou\s]|\ba [aeiou]", text.replace("an image", "").replace("an illustration", ""))
    sizes = {"small": ("small", "little"), "large": ("large", "big")}
    for caption, wording in other:
        back = plain_names(wording)
        for word in (*COLORS, *SHAPES):
            assert bool(re.search(rf"\b{word}", back)) == bool(re.search(rf"\b{word}", caption)), (caption, wording)
        for size, words in sizes.items():
            assert bool(re.search(rf"\b({'|'.join(words)})\b", back)) == (size in caption), (caption, wording)
