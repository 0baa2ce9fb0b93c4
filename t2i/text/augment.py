"""Caption augmentation: other ways to say a caption, so a model learns language, not strings.

Trained on bare CLDR names ("elephant"), our text side answered "elephant" and drew a mammoth
for "an elephant". Each caption gets a few rephrasings that keep its meaning: an article, a
framing ("a picture of …", "show me …", "an emoji of …"), a word about the picture's look ("a
cute …", "a shiny …"), and the same scene said another way ("a circle and a square" → "a
square and a circle", "two circles" → "2 circles"; for a shapes caption, a handful of wordings
from a grammar of English in t2i.text.shapes_wording: "a pair of circles in red, please").
Which framings a caption gets is fixed by a hash of it, so the set of strings (and their
encodings, cached on disk) is the same in every run; which one a training step draws comes from
the step's seeded generator (t2i.train.captions.CaptionTable).

Case is not varied: the frozen MiniLM is uncased, so "An Elephant" and "an elephant" have the
same encoding.

No variant is ever a prompt of the evaluation or development sets (t2i/assets/prompts/*.jsonl),
nor a framing of one: "2 circles" is asked by the shapes paraphrases, so the numerals are
taught on "2 red circles" and "a picture of 2 squares and a triangle", and "2 circles" stays a
prompt the model never saw.
"""
from __future__ import annotations

import hashlib
import re

from t2i.data.shapes import RELATION_PARAPHRASES
from t2i.text.held_out import evaluation_prompts, normalize_prompt
from t2i.text.shapes_wording import wordings

# {a} is "a" or "an" for what follows it, {c} the caption, {adj} one of ADJECTIVES
GENERIC_TEMPLATES = ("{a} {c}", "the {c}", "a picture of {a} {c}", "an image of {a} {c}", "a drawing of {a} {c}",
                     "{a} {adj} {c}", "the {adj} {c}", "show me {a} {c}", "draw {a} {c}", "i want {a} {adj} {c}")
EMOJI_TEMPLATES = GENERIC_TEMPLATES + ("{c} emoji", "an emoji of {a} {c}", "an icon of {a} {c}", "{c} icon", "{a} {adj} {c} emoji")
# shapes captions already start with their own article or count, and sizes are part of their
# meaning ("a large red circle"): framings only, no adjectives
SHAPES_TEMPLATES = ("a picture of {c}", "an image of {c}", "a drawing of {c}", "{c} on a white background", "{c} on white")
# Words that describe how a picture looks, not what it shows: a "cute sloth" is still the sloth
# emoji. No colours, sizes of shapes, moods or ages, which name other emoji ("red heart",
# "grinning face", "old woman").
ADJECTIVES = ("cute", "little", "big", "tiny", "simple", "colorful", "bright", "shiny", "cartoon", "classic", "lovely",
              "cool", "nice", "beautiful", "adorable", "sweet", "flat", "detailed", "fancy", "plain", "pretty", "glossy", "neat")
VARIANTS_PER_CAPTION = 4

# count words people often type as numerals; "one" is left alone ("the one", "one-piece")
NUMERALS = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
            "nine": "9", "ten": "10", "eleven": "11", "twelve": "12"}
_COUNT_WORD = re.compile(r"\b(" + "|".join(NUMERALS) + r")(?= )")  # followed by a space: not "two-hump camel"

# every relation word the shapes captions use: a caption with one is not a list to reorder
_RELATION = re.compile(r"\b(" + "|".join(sorted({w for r, more in RELATION_PARAPHRASES.items() for w in (r, *more)}, key=len, reverse=True)) + r")\b")


def templates_for(data: str) -> tuple[str, ...]:
    """The framings that suit a dataset ("emoji", "shapes", or a user's folder)."""
    return {"emoji": EMOJI_TEMPLATES, "shapes": SHAPES_TEMPLATES}.get(data, GENERIC_TEMPLATES)


def _article(caption: str) -> str:
    return "an" if caption[:1].lower() in "aeiou" else "a"


def _starts_with_determiner(caption: str) -> bool:
    return caption.split(" ", 1)[0].lower() in {"a", "an", "the", "two", "three", "four", "2", "3", "4"}


def fill(template: str, caption: str, adjective: str = ADJECTIVES[0]) -> str:
    """One template applied to one caption; a caption that already has an article keeps it
    ("a red apple" never becomes "a a red apple") and takes no adjective."""
    if _starts_with_determiner(caption):
        template = template.replace("{a} {adj} {c}", "{c}").replace("the {adj} {c}", "{c}")
        template = template.replace("{a} {c}", "{c}").replace("the {c}", "{c}")
    head = adjective if "{a} {adj}" in template else caption
    return " ".join(template.format(a=_article(head), adj=adjective, c=caption).split())


def rephrasings(caption: str) -> list[str]:
    """A caption said another way with the same meaning: the parts of an "A and B" list in the
    other order (a list has no order; a relation does), and its count words as numerals
    ("two red circles" → "2 red circles"). None is an evaluation prompt."""
    out = []
    if not _RELATION.search(caption) and caption.count(" and ") == 1 and "," not in caption:
        left, right = caption.split(" and ")
        if _starts_with_determiner(left) and _starts_with_determiner(right):  # "a circle and a square", not "trinidad and tobago"
            out.append(f"{right} and {left}")
    numerals = _COUNT_WORD.sub(lambda m: NUMERALS[m.group(1)], caption)
    if numerals != caption:
        out.append(numerals)
    return [r for r in out if normalize_prompt(r) not in evaluation_prompts()]


def all_variants(caption: str, templates: tuple[str, ...]) -> list[str]:
    """Every rephrasing and every framing of a caption, with every adjective (what the
    disjointness test checks)."""
    forms = [caption, *rephrasings(caption)]
    framed = [fill(t, f, adj) for f in forms for t in templates for adj in (ADJECTIVES if "{adj}" in t else ADJECTIVES[:1])]
    return _unique(framed + forms[1:] + wordings(caption), caption)


def caption_variants(caption: str, templates: tuple[str, ...], count: int = VARIANTS_PER_CAPTION) -> list[str]:
    """The rephrasings of a caption, `count` of its framings (the first template, and the
    others and any adjective chosen by a hash of the caption, stable across runs and Python
    versions), and for a shapes caption its other wordings (t2i.text.shapes_wording), which
    carry their own framings."""
    if not templates:
        return _unique(rephrasings(caption) + wordings(caption), caption)
    digest = lambda text: hashlib.sha256(f"{caption}\0{text}".encode()).digest()  # noqa: E731
    rest = sorted(templates[1:], key=digest)
    picked = [templates[0], *rest]  # the first framing (the bare article, for names) always
    forms = [caption, *rephrasings(caption)]
    framed = [fill(t, forms[i % len(forms)], ADJECTIVES[digest(t)[0] % len(ADJECTIVES)]) for i, t in enumerate(picked)]
    return _unique(forms[1:] + framed[:count] + wordings(caption), caption)


def _unique(items: list[str], caption: str) -> list[str]:
    return [v for v in dict.fromkeys(items) if v != caption and normalize_prompt(v) not in evaluation_prompts()]

