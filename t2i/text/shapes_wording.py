"""Other wordings of a shapes-world caption: the same scene said the ways people say it.

The shapes captions come from a handful of templates ("two red circles", "a circle and a
square", "a large circle to the left of a blue triangle"). People write "a pair of red
circles", "circles, two of them", "a circle that is red", "both a circle and a square", "left:
circle, right: square", "please draw a circle!". A caption is parsed back into its scene (the
objects' counts, sizes, colours and shapes, and a relation between two of them) and said again
with each part chosen from a grammar of English wordings: count words and numerals, attributes
before or after the noun or in a clause after the shapes ("a circle and a square; the circle is
red, the square blue"), list joiners, relations turned around ("B to the right of A" is the
scene "A to the left of B"), other names for the shapes ("a round shape", "two three-sided
shapes"), framings and closing words. Two more say the shapes, colours and sizes in other
everyday words ("a disc", "two scarlet squares", "a tiny triangle"; from t2i.text.synonyms), and
two give its counts and attributes as labels ("circles (x3)", "circle: red", "three circles, not
four"; from t2i.text.shapes_fields). A few are said among words that leave the picture alone
("for my kid's worksheet, ...", "..., it's for a slide deck"; from t2i.text.context_words), since
people say why they want a picture and a model must not draw their reasons. Every wording is true
of the scene the caption describes, so it stays true of the image.

Which wordings a caption gets is drawn by a generator seeded from the caption's hash: the same
strings in every run, so their encodings stay cached.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

import numpy as np

from t2i.data.shapes import COLORS, COUNT_WORDS, RELATION_PARAPHRASES, SHAPES, SIZES
from t2i.text.context_words import AFTER, BEFORE, REQUESTS, SENTENCES
from t2i.text.held_out import evaluation_prompts, normalize_prompt
from t2i.text.negatives import RELATIONS as MIRRORED  # "to the left of" -> "to the right of", ...
from t2i.text.shapes_fields import PLACES, said_as_fields
from t2i.text.shapes_fields import pick as _pick
from t2i.text.synonyms import COLOUR_NAMES, SHAPE_NAMES, SIZE_NAMES
from t2i.text.typos import misspelt

WORDINGS_PER_CAPTION = 6
CONTEXT_PER_CAPTION = 3  # more wordings, said with words around them that leave the picture alone
SYNONYM_WORDINGS = 2  # more wordings, in other words for the shapes, colours and sizes ("a disc", "a scarlet square")
SYNONYM_ODDS = 0.75  # the share of a synonym wording's shapes, colours and sizes said in other words
# their names are longer ("three-sided figures"): 18% of such wordings passed the text encoder's 32 tokens, losing scene
# words; one of at most 20 words almost never does (0.3%), so up to SYNONYM_TRIES are drawn for one that short
SYNONYM_MAX_WORDS, SYNONYM_TRIES = 20, 4
# a circle named twice, as people do ("a round disc", "two circular circles"): the s49 fine-tune on
# the lexicon alone passed such prompts of the seventh blind set 0.38 of the time, 0.68 before it
NAMED_TWICE = {"circle": ("round", "circular")}
NAMED_TWICE_ODDS = 0.3
TYPO_WORDINGS = 1  # more wordings, each with a typing error, mostly in a word of the scene ("a blu cirlce")
FIELD_WORDINGS = 2  # more wordings, with counts and attributes as labels ("circles (x3)", "circle: red", "three circles, not four")
FRONT_CONTEXT_MAX_WORDS = 12  # a longer scene takes context only after it: in front, it would push the scene past 32 tokens

_COUNT_OF = {"a": 1, **{w: n for n, w in COUNT_WORDS.items()}}
_PHRASE = re.compile(rf"(a|{'|'.join(COUNT_WORDS.values())}) (?:({'|'.join(SIZES)}) )?(?:({'|'.join(COLORS)}) )?({'|'.join(SHAPES)})(s?)")
_RELATION_OF = {w: r for r, more in RELATION_PARAPHRASES.items() for w in (r, *more)}

# ------------------------------------------------------------------ the grammar's choices
SIZE_WORDS = {"small": ("small", "little"), "large": ("large", "big")}
NUMBER_WORDS = {1: ("a", "a", "a", "one", "a single", "1"),
                2: ("two", "2", "a pair of", "a couple of", "exactly two", "a set of two", "a group of two", "two separate"),
                3: ("three", "3", "a trio of", "a group of three", "a set of three", "exactly three", "a collection of three",
                    "a total of three", "three separate"),
                4: ("four", "4", "a group of four", "a set of four", "a quartet of", "exactly four", "a collection of four",
                    "a total of four", "four separate")}
# the number of shapes in the whole scene, said around it: "two shapes: a circle and a square"
TOTAL_WORDS = {1: ("one", "1", "a single"), 2: ("two", "2"), 3: ("three", "3"), 4: ("four", "4")}
TOTAL_FORMS = ("{n} {shapes}: {s}", "{n} {shapes}, {s}", "{n} {shapes} - {s}", "{s} ({n} {shapes})", "{s}, {n} {shapes} in total",
               "{s}, {n} {shapes} in all", "a picture of {n} {shapes}: {s}", "{n} {objects}: {s}", "{s}, {n} {objects} in total",
               "exactly {n} {shapes}: {s}", "{n} {shapes} in total: {s}", "{s}: {n} {shapes}")
RELATION_WORDS = {
    "to the left of": ("to the left of", "left of", "on the left of", "on the left side of", "on the left-hand side of", "just left of",
                       "further left than", "farther left than", "more to the left than"),
    "to the right of": ("to the right of", "right of", "on the right of", "on the right side of", "on the right-hand side of", "just right of",
                        "further right than", "farther right than", "more to the right than"),
    "above": ("above", "over", "on top of", "atop", "higher than", "up above", "placed above", "higher up than", "further up than",
              "directly above"),
    "below": ("below", "under", "beneath", "underneath", "lower than", "down below", "placed below", "lower down than", "further down than",
              "directly below"),
}
# a relation said from the other object, as a place beside it: "a square, and to its left a circle"
SIDE_WORDS = {
    "to the left of": ("to its left", "to the left of it", "on its left", "left of it", "to the left of that", "further left"),
    "to the right of": ("to its right", "to the right of it", "on its right", "right of it", "to the right of that", "further right"),
    "above": ("above it", "over it", "on top of it", "above that", "higher up", "over that"),
    "below": ("below it", "under it", "beneath it", "under that", "lower down", "below that"),
}
PREFIXES = ("draw", "sketch", "paint", "make", "create", "render", "generate", "show", "show me", "give me", "please draw",
            "please make", "can you draw", "could you paint", "i want", "i'd like", "i would like", "there is", "the image shows",
            "the picture shows", "the image contains", "a picture with", "an image with", "an image containing", "a canvas with",
            "just", "only", "place", "put", "add", "depict", "illustrate",
            # words about the picture's style, which every picture of the shapes world fits
            "clip art of", "clip art:", "a diagram of", "a diagram:", "a geometric drawing of", "a simple illustration of",
            "an illustration of", "a flat illustration of", "a minimal drawing of", "a vector drawing of", "a doodle of",
            "flat design:", "simple shapes:", "geometry:")
SUFFIXES = ("please", ", please", ", thanks", "only", ", only", "and nothing else", ", nothing else", ", no more", "alone",
            "in the picture", "in the image", "on a blank canvas", "on an empty background", "on a plain background",
            "on a white canvas", ", that's all", "and no more", ", and that is all", ", no more, no less", "and nothing more",
            # nothing else is drawn: every scene is all the shapes in its picture
            ", no other shapes", "and no other shapes", ", no other objects", "with no other shapes", ", no extra shapes",
            ", nothing else in the picture", "and nothing else around", ", no other shapes anywhere",
            # the picture's style
            ", clip art", ", flat design", ", vector art", ", simple geometric shapes", ", minimal style", "in flat style",
            ", geometric illustration", ", diagram")
ENDINGS = ("", "", "", ".", "!")
# other names people give the shapes, in one more wording of a caption: "a round shape", "two triangular shapes"
# ("square shape" is already said, and "four-sided shape" is any quadrilateral)
OTHER_NAMES = {"circle": ("round shape", "circular shape"), "triangle": ("triangular shape", "three-sided shape")}
_NAMED = re.compile(rf"\b({'|'.join(OTHER_NAMES)})( shape)?(s?)\b")  # "circle", "circles", "circle shape", "circle shapes"
_SIZE_OF = {word: size for size, words in SIZE_WORDS.items() for word in words}  # "big" -> "large"
# a shape ("circle", "circle shapes"), colour or size, with the article before it, if any, to agree with its other word
_NAMEABLE = re.compile(rf"\b(?:([Aa]n?) )?(?:({'|'.join(SHAPES)})(?: shape)?(s?)|({'|'.join(COLORS)})|({'|'.join(_SIZE_OF)}))\b")
# the words that carry the picture, where a typo is most often made, and the world's words a typo
# must not make (a typo of "blue" is never another colour)
_WORLD_WORDS = frozenset([*SHAPES, *(s + "s" for s in SHAPES), *COLORS, *SIZES, *(w for ws in SIZE_WORDS.values() for w in ws),
                          *COUNT_WORDS.values(), "left", "right", "above", "below", "under", "over", "top", "bottom"])
_SCENE_WORD = re.compile("|".join(sorted(_WORLD_WORDS, key=len, reverse=True)), re.IGNORECASE)


@dataclass(frozen=True)
class Group:
    """`count` objects of one kind: 'two large red circles' is Group(2, 'large', 'red', 'circle')."""

    count: int
    size: str | None
    color: str | None
    shape: str


@dataclass(frozen=True)
class Scene:
    """What a caption says: groups of objects, or two single objects in a relation."""

    groups: tuple[Group, ...]
    relation: str | None = None  # groups[0] is `relation` of groups[1]


def _group(text: str) -> Group | None:
    m = _PHRASE.fullmatch(text)
    if m is None or (m.group(1) == "a") == (m.group(5) == "s"):  # "a circles", "two circle"
        return None
    return Group(_COUNT_OF[m.group(1)], m.group(2), m.group(3), m.group(4))


def parse_caption(caption: str) -> Scene | None:
    """The scene a shapes caption describes, or None for any other text."""
    for word in sorted(_RELATION_OF, key=len, reverse=True):
        left, sep, right = caption.partition(f" {word} ")
        if sep:
            a, b = _group(left), _group(right)
            ok = a is not None and b is not None and a.count == b.count == 1
            return Scene((a, b), _RELATION_OF[word]) if ok else None
    parts = re.split(r", | and ", caption)
    groups = [_group(p) for p in parts]
    if not all(groups) or (len(parts) > 1 and f" and {parts[-1]}" not in caption):
        return None
    return Scene(tuple(groups))


def wordings(caption: str, count: int = WORDINGS_PER_CAPTION) -> list[str]:
    """`count` wordings of a shapes caption, CONTEXT_PER_CAPTION more among context words,
    SYNONYM_WORDINGS in other words, TYPO_WORDINGS misspelt, FIELD_WORDINGS with its counts and
    attributes as labels and, with a circle or a triangle, one with their other names (fewer if
    some coincide or are evaluation prompts), or [] for other text."""
    scene = parse_caption(caption)
    if scene is None:
        return []
    # colours said in a later clause draw from a generator of their own: a caption that never gets one
    # keeps every wording it had before they were added
    rng, later = _seeded("wording", caption), _seeded("colours later", caption)
    said = (_say(rng, scene, later) for _ in range(count))
    # an evaluation prompt is never said, nor framed ("2 circles", so not "sketch 2 circles, please")
    out = [_frame(rng, s) for s in said if normalize_prompt(s) not in evaluation_prompts()]
    # and a few said among words that leave the picture alone ("for my slides, ..."), from a generator of
    # their own too
    context = _seeded("context", caption)
    said = (_say(context, scene, context) for _ in range(CONTEXT_PER_CAPTION))
    out += [_with_context(context, s) for s in said if normalize_prompt(s) not in evaluation_prompts()]
    # and one with other names for its circles and triangles ("a round shape"), from a generator of its own
    if _NAMED.search(caption):
        names = _seeded("other names", caption)
        out.append(_with_other_names(names, _frame(names, _say(names, scene, names))))
    # and a few in other everyday words for its shapes, colours and sizes, from a generator of their own
    synonyms = _seeded("synonyms", caption)
    out += [_in_other_words(synonyms, scene) for _ in range(SYNONYM_WORDINGS)]
    # and one with a typo, from a generator of its own
    typos = _seeded("typos", caption)
    out += [misspelt(typos, _frame(typos, _say(typos, scene, typos)), _SCENE_WORD, _WORLD_WORDS) for _ in range(TYPO_WORDINGS)]
    # and a few with its counts and attributes as labels ("circles (x3)", "circle: red"), from a generator of their own
    fields = _seeded("fields", caption)
    said = (said_as_fields(fields, scene) for _ in range(FIELD_WORDINGS))
    out += [_frame(fields, s) for s in said if normalize_prompt(s) not in evaluation_prompts()]
    return [w for w in dict.fromkeys(out) if w != caption and normalize_prompt(w) not in evaluation_prompts()]


def _seeded(purpose: str, caption: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{purpose}\0{caption}".encode()).digest()[:8], "little"))


def _say(rng: np.random.Generator, scene: Scene, later: np.random.Generator) -> str:
    words = _say_scene(rng, scene)  # said even when replaced below, so `rng` draws as it did before later clauses
    if _colours_go_later(later, scene):
        bare = Scene(tuple(replace(g, color=None) for g in scene.groups), scene.relation)
        words = _with_colours_after(later, scene, _say_scene(later, bare))
    return _with_total(rng, scene, words)


def _say_scene(rng: np.random.Generator, scene: Scene) -> str:
    if scene.relation is not None:
        return _say_relation(rng, scene)
    if len(scene.groups) == 1:
        return _say_group(rng, scene.groups[0], alone=True)
    order = rng.permutation(len(scene.groups)) if rng.random() < 0.5 else range(len(scene.groups))  # a list has no order
    return _join(rng, [_say_group(rng, scene.groups[i]) for i in order])


def _colours_go_later(rng: np.random.Generator, scene: Scene) -> bool:
    """Whether to name the shapes first and their colours in a clause after them ("a circle and a
    square; the circle is red, the square blue"). Only when "the square" names one group: every
    group a different shape."""
    shapes = [g.shape for g in scene.groups]
    if not any(g.color for g in scene.groups) or len(set(shapes)) < len(shapes):
        return False
    return rng.random() < (0.2 if len(shapes) > 1 else 0.1)


def _with_colours_after(rng: np.random.Generator, scene: Scene, words: str) -> str:
    """`words` (the scene said without colours) and a clause giving each group its colour."""
    if len(scene.groups) == 1:
        g = scene.groups[0]
        it, they, be = ("it", "it", "is") if g.count == 1 else ("them", "they", "are")
        forms = (("{s}, make {it} {c}", "{s}. {They} {be} {c}", "{s}; {it} should be {c}", "{s}, and make {it} {c}", "{s}. color: {c}",
                  "{s}. colour {it} {c}") if g.count == 1 else
                 ("{s}, make {it} {c}", "{s}. {They} {be} {c}", "{s}, all of {it} {c}", "{s}, each {c}", "{s}; {it} should all be {c}",
                  "{s}. color {it} {c}", "{s}, each of {it} {c}"))
        form = _pick(rng, forms)
        return form.format(s=words, it=it, They=they.capitalize() if rng.random() < 0.5 else they, be=be, c=g.color)
    said = sorted(scene.groups, key=lambda g: words.index(g.shape))  # the order the words name them in
    if all(g.color for g in said) and rng.random() < 0.2:  # "a circle and a square, red and blue respectively"
        colours = _and(rng, [g.color for g in said])
        return _pick(rng, ("{s}, {c} respectively", "{s}, colored {c} respectively", "{s} in {c} respectively",
                           "{s}; {c}, respectively")).format(s=words, c=colours)
    coloured = [g for g in said if g.color]
    if rng.random() < 0.3:
        coloured.reverse()
    things = [(f"the {g.shape}" + ("s" if g.count > 1 else ""), "is" if g.count == 1 else "are", g.color) for g in coloured]
    form = _pick(rng, ("sentences", "elided", "make", "with", "should", "in"))
    if form == "sentences":  # "the circle is red and the square is blue", ", where the circle is red ..."
        clause = ("where " if rng.random() < 0.25 else "") + _and(rng, [f"{t} {be} {c}" for t, be, c in things])
    elif form == "elided":  # "the circle is red, the square blue"
        clause = ", ".join([" ".join(things[0])] + [f"{t} {c}" for t, _, c in things[1:]])
    elif form == "should":
        clause = _and(rng, [f"{t} should be {c}" for t, _, c in things])
    elif form == "in":  # "the circle in red, the square in blue"
        clause = ", ".join(f"{t} in {c}" for t, _, c in things)
    else:  # "make the circle red and the square blue", "with the circle red, the square blue"
        clause = (_pick(rng, ("make", "color", "colour", "paint")) if form == "make" else "with") + " " + \
            _and(rng, [f"{t} {c}" for t, _, c in things])
    joined = clause.startswith(("with ", "where "))  # not "a circle and a square. with the circle red"
    separators = (", ", " ") if joined else ("; ", ". ", ", ", " - ")
    return f"{words}{_pick(rng, separators)}{clause}"


def _and(rng: np.random.Generator, parts: list[str]) -> str:
    """'x', 'x and y', 'x, y', 'x, y and z', 'x, y, and z'."""
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + _pick(rng, (" and ", ", ") + ((", and ",) if len(parts) > 2 else ())) + parts[-1]


def _with_total(rng: np.random.Generator, scene: Scene, words: str) -> str:
    """Sometimes the scene's number of shapes around it ("three shapes: a circle and two
    squares", "a red circle, one shape only"); not for one group of several, whose count is
    already said ("three circles"), nor around places ("left: a circle, right: a square")."""
    total = sum(g.count for g in scene.groups)
    if (len(scene.groups) == 1 and total > 1) or ":" in words or rng.random() >= 0.2:
        return words
    if total == 1 and rng.random() < 0.3:
        return _pick(rng, ("{s}, one shape only", "{s}, the only shape", "only one shape: {s}", "just one shape, {s}")).format(s=words)
    n = _pick(rng, TOTAL_WORDS[total])
    plural = total > 1
    return _pick(rng, TOTAL_FORMS).format(n=n, s=words, shapes="shapes" if plural else "shape", objects="objects" if plural else "object")


def _join(rng: np.random.Generator, phrases: list[str]) -> str:
    head, last = ", ".join(phrases[:-1]), phrases[-1]
    joiners = ["{h} and {l}", "{h}, {l}", "{h} plus {l}", "{h} as well as {l}", "{h} along with {l}", "{h} with {l}",
               "{h} & {l}", "{h} + {l}", "{h}, and {l} too", "{h}, and also {l}", "{h} together with {l}"]
    if len(phrases) == 2:
        joiners.append("both {h} and {l}")
    return _pick(rng, tuple(joiners)).format(h=head, l=last)


def _say_group(rng: np.random.Generator, g: Group, *, alone: bool = False, definite: bool = False) -> str:
    size = _pick(rng, SIZE_WORDS[g.size]) if g.size else None
    noun = g.shape if g.count == 1 else g.shape + "s"
    if rng.random() < 0.1:  # "a red circle shape", "two triangle shapes"
        noun = g.shape + (" shape" if g.count == 1 else " shapes")
    number = "the" if definite else _pick(rng, NUMBER_WORDS[g.count])
    where = rng.random()
    if g.color is None or where < 0.5:  # the usual order: size, colour, noun
        words = " ".join(w for w in (number, size, g.color, noun) if w)
    else:  # the colour after the noun
        be = "is" if g.count == 1 else "are"
        tails = (f"that {be} {g.color}", f"in {g.color}", f"colored {g.color}", f"coloured {g.color}", f"of {g.color} color")
        words = " ".join(w for w in (number, size, noun, _pick(rng, tails)) if w)
        if alone and rng.random() < 0.3:  # "a circle, red", "two squares, both blue"
            words = " ".join(w for w in (number, size, noun) if w) + ", " + (g.color if g.count == 1 else f"all {g.color}")
    if number == "a" and words.startswith("a ") and words[2:3] in "aeiou":
        words = "an " + words[2:]
    if alone and g.count > 1 and not definite and rng.random() < 0.3:  # "circles, three of them", "circles x3"
        bare = " ".join(w for w in (size, g.color, noun) if w)
        word = COUNT_WORDS[g.count]
        forms = (f"{bare}, {word} of them", f"{bare}: {word}", f"{bare} x{g.count}", f"{g.count}x {bare}", f"{bare}, {word} in all")
        words = _pick(rng, forms)
    return words


def _say_relation(rng: np.random.Generator, scene: Scene) -> str:
    a, b = scene.groups
    relation = scene.relation
    if rng.random() < 0.5:  # the same scene seen from the other object
        a, b, relation = b, a, MIRRORED[relation]
    style = rng.random()
    if style < 0.45:  # "a circle to the left of a square", "the circle is left of the square"
        definite = rng.random() < 0.4
        pa, pb = _say_group(rng, a, definite=definite), _say_group(rng, b, definite=definite)
        verbs = (" is", " sits", " lies", " is placed", " is positioned", " appears") if definite else \
            ("", "", "", " that is", " that sits", " sitting", " lying", " positioned")
        verb, word = _pick(rng, verbs), _pick(rng, RELATION_WORDS[relation])
        if word.startswith("placed"):  # not "the circle is placed placed above ..."
            verb = " is" if definite else ""
        return f"{pa}{verb} {word} {pb}"
    if style < 0.7:  # "a square, and to its left a circle", "a square with a circle above it", "a square, then a circle under it"
        pa, pb = _say_group(rng, a), _say_group(rng, b)
        side = _pick(rng, SIDE_WORDS[relation])
        form = _pick(rng, ("{b}, and {side} {a}", "{b} with {a} {side}", "{b}, with {a} {side}", "{b} and, {side}, {a}",
                           "{b}, then {a} {side}", "first {b}, then {a} {side}", "{b} and {a} {side}", "{b}; {side}, {a}"))
        return form.format(a=pa, b=pb, side=side)
    # two places: "left: a circle, right: a square", "from top to bottom: a triangle, then a circle"
    if relation not in PLACES:  # "right of" and "below" are said from the other object
        a, b, relation = b, a, MIRRORED[relation]
    near, far, _ = PLACES[relation]
    pa, pb = _say_group(rng, a), _say_group(rng, b)
    along = {"left": "left to right", "top": "top to bottom"}[near]
    at = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}
    form = _pick(rng, ("{near}: {a}, {far}: {b}", "{at_near} {a}, {at_far} {b}", "{a} {at_near} and {b} {at_far}",
                       "from {along}: {a}, then {b}", "{a} {at_near}, {b} {at_far}"))
    return form.format(near=near, far=far, a=pa, b=pb, at_near=at[near], at_far=at[far], along=along)


def _with_other_names(rng: np.random.Generator, words: str) -> str:
    """Each circle and triangle of `words` called by another name ("a round shape", "two
    three-sided shapes"), drawn afresh for each mention."""
    return _NAMED.sub(lambda m: _pick(rng, OTHER_NAMES[m.group(1)]) + m.group(3), words)


def _in_other_words(rng: np.random.Generator, scene: Scene) -> str:
    """The scene said and framed with other words for its shapes, colours and sizes: the first
    of SYNONYM_TRIES draws of at most SYNONYM_MAX_WORDS words, else the shortest."""
    drawn = []
    for _ in range(SYNONYM_TRIES):
        drawn.append(_with_synonyms(rng, _frame(rng, _say(rng, scene, rng))))
        if len(drawn[-1].split()) <= SYNONYM_MAX_WORDS:
            break
    return min(drawn, key=lambda w: len(w.split()))


def _with_synonyms(rng: np.random.Generator, words: str) -> str:
    """Each shape, colour and size of `words` said, with odds SYNONYM_ODDS, in other everyday
    words ("two scarlet discs", "an enormous square tile"), drawn afresh for each mention."""

    def swap(m: re.Match) -> str:
        article, shape, plural, colour, size = m.groups()
        if rng.random() < SYNONYM_ODDS:
            if shape:
                word = SHAPE_NAMES[shape][int(rng.integers(len(SHAPE_NAMES[shape])))][1 if plural else 0]
            else:
                word = _pick(rng, COLOUR_NAMES[colour] if colour else SIZE_NAMES[_SIZE_OF[size]])
        elif shape in NAMED_TWICE and not m.group(0).endswith(("shape", "shapes")):
            word = shape + plural  # its own name, which can be named twice too: "a round circle"
        else:
            return m.group(0)
        if shape in NAMED_TWICE and " " not in word and rng.random() < NAMED_TWICE_ODDS:  # "disc", not "round shape"
            word = f"{_pick(rng, NAMED_TWICE[shape])} {word}"
        if article is None:
            return word
        return f"{article[0]}{'n' if word[0] in 'aeiou' else ''} {word}"

    return _NAMEABLE.sub(swap, words)


def _with_context(rng: np.random.Generator, words: str) -> str:
    """The scene among words that say why, for whom, or how politely, true of any picture of
    it ("for a school worksheet, could you whip up a circle and a square, thanks")."""
    scene, short = words, len(words.split()) <= FRONT_CONTEXT_MAX_WORDS
    # "could you whip up a circle", not "... up left: a circle" nor "... up the circle is left of the square"
    if short and rng.random() < 0.5 and ":" not in words and not words.startswith("the "):
        scene = f"{_pick(rng, REQUESTS + PREFIXES[:12])} {words}"
    form = _pick(rng, ("before", "after", "sentence first", "sentence last", "both") if short else ("after", "sentence last"))
    if form == "before":
        text = f"{_pick(rng, BEFORE)} {scene}"
    elif form == "after":
        text = f"{scene}{_pick(rng, AFTER)}"
    elif form == "sentence first":
        text = f"{_pick(rng, SENTENCES)}{_pick(rng, ('. ', '! ', ', ', ' - '))}{scene}"
    elif form == "sentence last":
        text = f"{scene}{_pick(rng, ('. ', '! ', ', ', ' - '))}{_pick(rng, SENTENCES)}"
    else:
        text = f"{_pick(rng, BEFORE)} {scene}{_pick(rng, AFTER)}"
    return text + _pick(rng, ENDINGS)


def _frame(rng: np.random.Generator, words: str) -> str:
    """Sometimes a request or a closing word around the scene ("please draw …", "… only")."""
    u = rng.random()
    if u < 0.35:
        text = words
    elif u < 0.7 and ":" not in words:  # not "draw left: a circle, right: a square"
        prefix = _pick(rng, PREFIXES)
        text = f"{prefix} {words}" + ("?" if prefix.startswith(("can", "could")) else "")
    elif u < 0.9:
        suffix = _pick(rng, SUFFIXES)
        text = f"{words}{'' if suffix.startswith(',') else ' '}{suffix}"
    elif ":" not in words:
        text = f"{_pick(rng, PREFIXES[:12])} {words}, {_pick(rng, ('please', 'thanks', 'only'))}"
    else:
        text = words
    return text if text.endswith("?") else text + _pick(rng, ENDINGS)
