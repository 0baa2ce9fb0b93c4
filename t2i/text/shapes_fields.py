"""A shapes scene said the way people list its counts and attributes, not in a phrase.

People who ask for a precise picture often stop writing English: they give a count in
brackets or as a field ("three (3) circles", "circles (x3)", "shape: circle, count: 3"), rule
out the counts they fear ("three circles, not four", "exactly 3 circles, not 2 or 4"), and
give each shape's colour or size as a label ("circle: red, square: blue", "circle (red) and
square (blue)", "red - circle, blue - square"). These are the forms of counts and attributes
seen in spreadsheets, forms, shopping lists and bug reports, written here from that general
account (the eleventh blind set's failures pointed at the kinds; no prompt's words were copied).
Each is true of the scene: a negated count is never the scene's own, and nothing names a colour,
shape, size or place the scene lacks.

t2i.text.shapes_wording draws FIELD_WORDINGS of these for every shapes caption, from a
generator of their own, so the caption's other wordings stay as they were.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from t2i.data.shapes import COUNT_WORDS
from t2i.text.negatives import RELATIONS as MIRRORED  # "to the right of" -> "to the left of", ...

if TYPE_CHECKING:
    from t2i.text.shapes_wording import Group, Scene

_WORD = {1: "one", **COUNT_WORDS}
# the counts a negation rules out: the scene's neighbours, never "one" for a group of several
# ("three circles, not one" reads as a correction of a single circle, which the scene is not)
_WRONG = {1: (2, 3), 2: (3, 4), 3: (2, 4), 4: (2, 3)}
_COLOUR_FIELD = ("colour", "color")
PLACES = {"to the left of": ("left", "right", "left of"), "above": ("top", "bottom", "above")}  # the near and far place, and between


def pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of `options`, drawn uniformly (shapes_wording draws with it too, so both draw alike)."""
    return options[int(rng.integers(len(options)))]


def _number(rng: np.random.Generator, n: int) -> str:
    return pick(rng, (_WORD[n], str(n)))


def _noun(g: Group) -> str:
    return g.shape + ("s" if g.count > 1 else "")


def _plain(rng: np.random.Generator, g: Group) -> str:
    """'three small red circles', 'a circle', '2 squares'."""
    number = ("a" if rng.random() < 0.7 else _number(rng, 1)) if g.count == 1 else _number(rng, g.count)
    words = " ".join(w for w in (number, g.size, g.color, _noun(g)) if w)
    return "an " + words[2:] if words.startswith("a ") and words[2] in "aeiou" else words


def negated_count(rng: np.random.Generator, g: Group) -> str:
    """'three circles, not four', 'exactly 2 red squares, not 3 or 4', 'not two but three circles'."""
    wrong = [_number(rng, m) for m in _WRONG[g.count]]
    wrong = wrong[: 1 + int(rng.integers(2))]
    right = _plain(rng, g)
    if not (g.size or g.color):  # "three circles, not four": "3 circles" is an evaluation prompt, never said as a scene
        right = " ".join([_WORD[g.count], *right.split(" ")[1:]]) if g.count > 1 else right
    if g.count == 1 and right.startswith(("a ", "an ")):
        right = pick(rng, ("one", "1", "a single", "just one")) + right[right.index(" "):]
    if rng.random() < 0.3:
        right = "exactly " + right
    nots = " or ".join(wrong)
    form = pick(rng, ("{r}, not {w}", "{r} (not {w})", "{r} - not {w}", "{r}, and not {w}", "{r}. not {w}!", "{r}, not {w}, just {n}",
                      "{r} - {n}, not {w}"))
    text = form.format(r=right, w=nots, n=_number(rng, g.count))
    if not right.startswith("exactly") and rng.random() < 0.25:
        text = "not " + " or ".join(wrong) + " but " + right
    return text


def bracketed_count(rng: np.random.Generator, g: Group) -> str:
    """'three (3) circles', 'circles (x3)', 'red circles: 3', 'shape: circle, count: 3, colour: red'."""
    n, word = str(g.count), _WORD[g.count]
    described = " ".join(w for w in (g.size, g.color, _noun(g)) if w)
    form = pick(rng, ("word_numeral", "after", "field", "fields"))
    if form == "word_numeral":  # "three (3) red circles", "3 (three) red circles"
        first, second = (word, n) if rng.random() < 0.6 else (n, word)
        return f"{first} ({second}) {described}"
    if form == "after":
        return pick(rng, ("{d} ({n})", "{d} (x{n})", "{d} ({w})", "{d}: {n}", "{d} - {n}", "{d} = {n}", "{d} ({w} of them)",
                          "{d}, count: {n}", "{d}, qty {n}", "{d} [{n}]")).format(d=described, n=n, w=word)
    if form == "field":  # "number of circles: 3"
        return pick(rng, ("number of {d}: {n}", "how many {d}: {n}", "{d} count: {n}", "count of {d}: {w}")).format(
            d=described, n=n, w=word)
    return ", ".join(_fields(rng, g, count=True))


def _fields(rng: np.random.Generator, g: Group, *, count: bool) -> list[str]:
    """'shape: circle', 'count: 3', 'colour: red', 'size: large', in a shuffled order after the shape."""
    sep = pick(rng, (": ", " = ", " "))
    rest = [f"{pick(rng, ('count', 'number', 'quantity'))}{sep}{g.count}"] if count else []
    if g.color:
        rest.append(f"{pick(rng, _COLOUR_FIELD)}{sep}{g.color}")
    if g.size:
        rest.append(f"size{sep}{g.size}")
    order = rng.permutation(len(rest))
    return [f"shape{sep}{g.shape}", *(rest[i] for i in order)]


def labelled(rng: np.random.Generator, g: Group, *, bracketed: bool = False) -> str:
    """A group with its attributes as labels: 'circle: red', 'circle (red, large)', 'red - circle',
    'three circles (blue)', '2x square, blue'; only in brackets if `bracketed` (inside a longer label)."""
    traits = [t for t in (g.color, g.size) if t]
    if rng.random() < 0.5:
        traits.reverse()
    counted = pick(rng, (f"{_number(rng, g.count)} {_noun(g)}", f"{g.count}x {g.shape}", f"{_noun(g)} x{g.count}")) if g.count > 1 else \
        pick(rng, (g.shape, g.shape, f"a {g.shape}", f"1 {g.shape}", f"1x {g.shape}"))
    if not traits:
        return counted
    said = ", ".join(traits)
    if bracketed:
        return pick(rng, ("{g} ({t})", "{g} [{t}]")).format(g=counted, t=said)
    if len(traits) == 1 and rng.random() < 0.3:  # the label first: "red: circle", "red - two circles"
        return pick(rng, ("{t}: {g}", "{t} - {g}")).format(t=said, g=counted)
    return pick(rng, ("{g}: {t}", "{g} ({t})", "{g} - {t}", "{g}, {t}", "{g} [{t}]", "{g} -> {t}")).format(g=counted, t=said)


def said_as_fields(rng: np.random.Generator, scene: Scene) -> str:
    """The scene said as counts and labels rather than a phrase."""
    groups = scene.groups
    if scene.relation is not None:
        return _relation_labelled(rng, scene)
    if len(groups) == 1:
        g = groups[0]
        form = pick(rng, ("negated", "bracketed", "labelled") if g.count > 1 else ("negated", "labelled", "fields"))
        if form == "negated":
            return negated_count(rng, g)
        if form == "bracketed":
            return bracketed_count(rng, g)
        if g.color or g.size:
            return ", ".join(_fields(rng, g, count=rng.random() < 0.3)) if form == "fields" else labelled(rng, g)
        return bracketed_count(rng, g) if g.count > 1 else ", ".join(_fields(rng, g, count=True))  # no label: "shape: circle, count: 1"
    order = rng.permutation(len(groups)) if rng.random() < 0.5 else range(len(groups))
    said = [groups[i] for i in order]
    style = rng.random()
    if style < 0.45:  # "circle: red, square: blue", "circle (red) and 2x square (blue)"
        parts = [labelled(rng, g) for g in said]
    elif style < 0.7:  # "1 circle + 2 squares", "circle (1), squares (2)"
        form = pick(rng, ("{n} {d}", "{d} ({n})", "{d} x{n}", "{n}x {d}", "{d}: {n}"))
        parts = [form.format(n=g.count, d=" ".join(w for w in (g.size, g.color, g.shape if g.count == 1 else _noun(g)) if w))
                 for g in said]
    else:  # "objects: a red circle, two squares", "1) a red circle 2) two squares"
        plain = [_plain(rng, g) for g in said]
        numbered = pick(rng, ("1) {} 2) {}", "1. {} 2. {}", "(1) {} (2) {}", "- {} - {}"))
        if len(plain) == 2 and rng.random() < 0.4:
            return numbered.format(*plain)
        head = pick(rng, ("objects: ", "shapes: ", "contents: ", "items: ", "list: ", "in the picture: "))
        return head + pick(rng, (", ", "; ", " / ")).join(plain)
    joiner = pick(rng, (", ", "; ", " + ", " and ", " / ", " | "))
    text = joiner.join(parts)
    if rng.random() < 0.25:  # the total, as people check a list: "(3 shapes)"
        total = sum(g.count for g in groups)
        text += pick(rng, (" ({n} shapes)", ", {n} shapes total", " - {n} shapes in all")).format(n=_number(rng, total))
    return text


def _relation_labelled(rng: np.random.Generator, scene: Scene) -> str:
    """'circle (red) left of square (blue)', 'circle: left, square: right', 'top = triangle, bottom = circle'."""
    a, b = scene.groups
    relation = scene.relation
    if relation not in PLACES:  # said from the left or upper object
        a, b, relation = b, a, MIRRORED[relation]
    near, far, between = PLACES[relation]
    la, lb = labelled(rng, a, bracketed=True), labelled(rng, b, bracketed=True)
    if rng.random() < 0.5:
        return pick(rng, ("{a} {w} {b}", "{a}, {w} {b}", "{a} -> {w} -> {b}")).format(a=la, b=lb, w=between)
    sep = pick(rng, (": ", " = ", " - "))
    pairs = [f"{la}{sep}{near}", f"{lb}{sep}{far}"] if rng.random() < 0.5 else [f"{near}{sep}{la}", f"{far}{sep}{lb}"]
    return pick(rng, (", ", "; ", " | ", " / ")).join(pairs)
