"""Hard negative captions: the same words, another meaning.

A contrastive CLIP trained on random in-batch negatives learns a bag of words: "a circle above a
square" and "a circle below a square" differ in one word that no random negative ever tests, and
our shapes CLIP gave the two text embeddings cosine 0.996. NegCLIP (Yuksekgonul et al., ICLR
2023, "When and why vision-language models behave like bags-of-words") adds, per caption, a
perturbed caption as an extra negative. The perturbations here are the ones a caption of
objects with attributes and relations allows without a parser:

- flip a spatial relation:        "a circle above a square"  -> "a circle below a square"
  (every direction word at once, so a caption said any way flips too: "left: a circle, right:
  a square" -> "right: a circle, left: a square", "a square with a circle above it" -> "... below it")
- swap two different colours (or sizes) between objects:
                                  "a red circle and a blue square" -> "a blue circle and a red square"
  (a colour said in other words is that colour: "a scarlet disc and a blue square" -> "a blue
  disc and a scarlet square", but "a scarlet disc and a red square" has no colour swap; an
  article agrees with the word it now stands before: "an emerald disc and a red square" ->
  "a red disc and an emerald square")
- change a count by one:          "two squares" -> "three squares", "squares x3" -> "squares x4"
- one object or two of it:        "a red circle" -> "two red circles", "2 discs" -> "1 disc"
  (captions of one shape of the shapes world, whose plurals are known; the count change starts
  at two, and the matching head had learnt that "exactly one square" fits two squares)

A swap that only reorders the objects ("a red circle and a blue circle") keeps the meaning and
is dropped, as is a flip between two identical objects.
"""
from __future__ import annotations

import re

from t2i.errors import InputError
from t2i.text.synonyms import COLOUR_NAMES, SHAPE_NAMES, SIZE_NAMES

COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "magenta", "brown", "black", "white", "gray", "grey")
SIZES = ("small", "large", "big", "tiny", "huge")
# each colour or size word -> the colour or size it names ("scarlet" -> "red", "big" -> "large"):
# a swap exchanges two words only where they name different ones
COLOUR_OF = {**{c: c for c in COLOURS}, "grey": "gray", **{w: c for c, words in COLOUR_NAMES.items() for w in words}}
SIZE_OF = {**{w: w for w in SIZES}, "big": "large", "tiny": "small", "huge": "large", **{w: s for s, words in SIZE_NAMES.items() for w in words}}
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
# each relation phrase and its mirror image; longer phrases first, so "to the left of" is not
# read as "left of"
RELATIONS = {
    "to the left of": "to the right of", "to the right of": "to the left of",
    "on the left of": "on the right of", "on the right of": "on the left of",
    "left of": "right of", "right of": "left of",
    "on top of": "beneath", "beneath": "on top of",
    "above": "below", "below": "above", "over": "under", "under": "over",
    "in front of": "behind", "behind": "in front of",
}
_RELATION = re.compile(r"\b(" + "|".join(sorted(map(re.escape, RELATIONS), key=len, reverse=True)) + r")\b")
# every direction word of a caption said another way ("on its right-hand side", "from top to
# bottom: ...", "higher up than"), each with its mirror image: flipping all of them at once
# describes the mirrored scene however the caption is worded
MIRROR_WORDS = {**RELATIONS, "higher up": "lower down", "lower down": "higher up", "up above": "down below",
                "down below": "up above", "further up": "further down", "further down": "further up", "atop": "beneath",
                "underneath": "on top of", "higher": "lower", "lower": "higher", "left": "right", "right": "left", "top": "bottom",
                "bottom": "top"}
_MIRROR = re.compile(r"\b(" + "|".join(sorted(map(re.escape, MIRROR_WORDS), key=len, reverse=True)) + r")\b", re.IGNORECASE)
_SEPARATOR = re.compile(r",\s*|\s+and\s+")
_FROM_OTHER = re.compile(r"\b(its|further|farther)$", re.IGNORECASE)  # "on its", "further": the word before such a place


def _objects(caption: str) -> tuple[str, ...]:
    """The caption's object phrases, order-free: what a swap must change to change the meaning."""
    parts = [p.strip() for side in _RELATION.split(caption) for p in _SEPARATOR.split(side)]
    return tuple(sorted(p for p in parts if p and p not in RELATIONS))


def _relation_flip(caption: str) -> str | None:
    found = list(_MIRROR.finditer(caption))
    if not found:
        return None
    if len(found) == 1:  # "a circle left of a circle" has no mirror image; "left arrow" no relation
        m = found[0]
        left, right = caption[: m.start()].strip(), caption[m.end() :].strip()
        # but a place said from the other object can end a caption: "a square with a circle on its left", "..., further right"
        from_other = _FROM_OTHER.search(left) is not None or " " in m.group(1)  # "higher up", "lower down"
        if not left or not (right or from_other) or left == right:
            return None
    return _MIRROR.sub(lambda m: MIRROR_WORDS[m.group(1).lower()], caption)


def _words_of(meaning: dict[str, str]) -> re.Pattern:
    """Any of the words (longest first, so "royal blue" is one word, not "blue")."""
    return re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, meaning), key=len, reverse=True)) + r")(?![\w-])")


_COLOUR_WORD, _SIZE_WORD = _words_of(COLOUR_OF), _words_of(SIZE_OF)
_ARTICLE = re.compile(r"(?<!\w)([Aa])n? $")  # "a " or "an " just before a word


def _with_article_for(before: str, word: str) -> str:
    """`before` (the text up to `word`) with a closing "a"/"an" agreeing with `word`."""
    return _ARTICLE.sub(lambda m: m.group(1) + ("n " if word[0] in "aeiou" else " "), before)


def _attribute_swap(caption: str, meaning: dict[str, str], pattern: re.Pattern) -> str | None:
    found = list(pattern.finditer(caption))
    if not found:
        return None
    first = found[0]
    second = next((m for m in found[1:] if meaning[m.group(1)] != meaning[first.group(1)]), None)
    if second is None:
        return None
    a, b = first.group(1), second.group(1)
    middle = _with_article_for(caption[first.end() : second.start()], a)
    swapped = _with_article_for(caption[: first.start()], b) + b + middle + a + caption[second.end() :]
    return swapped if _objects(swapped) != _objects(caption) else None


_NUMERAL = re.compile(r"(x?)([2-9])(x?)")  # "3", "x3" and "3x" ("squares x3"); "1" reads as "a", as "one" does


def _count_change(caption: str) -> str | None:
    words = caption.split(" ")
    for i, w in enumerate(words):
        bare = w.rstrip(",.!?")
        if bare in NUMBERS[1:]:  # "one" reads as "a" in most captions: start at two
            n = NUMBERS.index(bare)
            words[i] = w.replace(bare, NUMBERS[n + 1] if n + 1 < len(NUMBERS) else NUMBERS[n - 1])
            return " ".join(words)
        if (m := _NUMERAL.fullmatch(bare)) and not (m.group(1) and m.group(3)):
            n = int(m.group(2))
            words[i] = w.replace(bare, f"{m.group(1)}{n + 1 if n < 9 else n - 1}{m.group(3)}")
            return " ".join(words)
    return None


# the shapes world's nouns, singular -> plural and back; longest first, so "round shape" is one noun
PLURAL_OF = {**{s: s + "s" for s in SHAPE_NAMES}, **{one: many for names in SHAPE_NAMES.values() for one, many in names}}
SINGULAR_OF = {many: one for one, many in PLURAL_OF.items()}
_NOUN = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, {**PLURAL_OF, **SINGULAR_OF}), key=len, reverse=True)) + r")(?![\w-])",
                   re.IGNORECASE)
ONE_WORDS = {"a": "two", "an": "two", "one": "two", "1": "2", "single": "two", "lone": "two", "sole": "two"}
TWO_WORDS = {"two": "one", "2": "1"}  # a leading "two" becomes "a"
# what may stand between a count and its noun ("a single flat bright red circle")
_MODIFIERS = {*COLOUR_OF, *SIZE_OF, "single", "lone", "sole", "flat", "plain", "simple", "solid", "bright", "deep", "royal", "perfect", "round"}


def _cased(word: str, like: str, shouting: bool) -> str:
    """`word` written as `like` is: upper case, capitalised or lower case; a one-letter `like`
    ("A") is upper case only where the caption shouts."""
    if like.isupper() and (len(like) > 1 or shouting):
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def _one_or_two(caption: str) -> str | None:
    """A caption of one kind of object only: its count of one made two, or of two made one; the
    count may stand a few modifiers before its noun ("a single tiny disc" -> "two tiny discs").
    A caption of several objects keeps its relation, colour and size negatives undiluted."""
    nouns = list(_NOUN.finditer(caption))
    if len(nouns) != 1:
        return None
    m = nouns[0]
    noun = m.group(1)
    table, new_noun = (ONE_WORDS, PLURAL_OF[noun.lower()]) if noun.lower() in PLURAL_OF else (TWO_WORDS, SINGULAR_OF[noun.lower()])
    before = caption[: m.start()].split(" ")  # ends with "", the space before the noun
    i = len(before) - 2
    while i >= 0 and before[i].lower() in _MODIFIERS and before[i].lower() not in table:
        i -= 1
    if i < 0 or before[-1] != "" or before[i].lower() not in table:
        return None  # no count next to the noun: "circle only", "a picture of circle"
    word = before[i].lower()
    if word in ("single", "lone", "sole") and i > 0 and before[i - 1].lower() in ("a", "an"):
        del before[i - 1]  # "a single circle" -> "two circles"
        i -= 1
    shouting = noun.isupper()
    before[i] = _cased(table[word], before[i], shouting)
    if i == 0 and word == "two":  # "two squares" -> "a square", the caption of one (and its images)
        following = before[1] if len(before) > 2 else new_noun
        before[0] = _cased("an" if following[0].lower() in "aeiou" else "a", before[0], shouting)
    return " ".join(before) + _cased(new_noun, noun, shouting) + caption[m.end() :]


# what a hard negative changes, each kind with its maker
MAKERS = {
    "relation": _relation_flip,
    "colour": lambda caption: _attribute_swap(caption, COLOUR_OF, _COLOUR_WORD),
    "size": lambda caption: _attribute_swap(caption, SIZE_OF, _SIZE_WORD),
    "count": _count_change,
    "one": _one_or_two,
}
KINDS = tuple(MAKERS)


def negative_kinds(text: str) -> tuple[str, ...]:
    """"all" or a comma-separated subset of KINDS ("relation,count") -> the kinds, in KINDS' order."""
    asked = KINDS if text.strip() == "all" else tuple(k.strip() for k in text.split(","))
    unknown = [k for k in asked if k not in MAKERS]
    if unknown:  # an empty name ("", "a,,b") is unknown too
        raise InputError(f"hard negatives must be 'all' or a comma-separated list of {', '.join(KINDS)}, got {text!r}")
    return tuple(k for k in KINDS if k in asked)


def hard_negatives(caption: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Captions that use (nearly) the same words as `caption` but describe another image, made
    by the perturbations `kinds` names; may be empty."""
    found = [MAKERS[kind](caption) for kind in kinds]
    return list(dict.fromkeys(n for n in found if n is not None and n != caption))


def rephrased_negatives(caption: str, rephrasing: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """The hard negatives of a rephrasing of `caption`, of the kinds the caption itself has one
    of: the two mean the same, so where the caption's perturbation changes nothing ("a circle
    above a circle" flipped) neither does the rephrasing's, whatever its words."""
    return hard_negatives(rephrasing, tuple(kind for kind in kinds if MAKERS[kind](caption) not in (None, caption)))
