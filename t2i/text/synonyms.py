"""Other everyday words for the shapes world's shapes, colours and sizes ("a disc", "two
scarlet squares", "a tiny triangle"), for one more wording of every shapes caption
(t2i.text.shapes_wording).

Each blind evaluation set has found a word people use that training never said: "round shape"
in the fifth, "disk" and "disc" in the sixth (47 of its 384 prompts; 0.22 passed against 0.85
for their canonical prompts). So rather than add the last set's words, a helper wrote this
lexicon blind to every evaluation set, the grammar and the repository, from the world's
description alone, under strict rules: each word names exactly that thing and nothing else in
the world (not "oval" for a circle, "rectangle" for a square, "pyramid" for a triangle, "pink"
for purple, "teal" for cyan, "tall" for large), ordinary English, no bare name of another
shape, colour or size. Its notes rejected 66 candidates. "blue-green" was dropped here: it
names two other colours of the world.
"""
from __future__ import annotations

# (singular, plural)
SHAPE_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "circle": (("disc", "discs"), ("disk", "disks"), ("round shape", "round shapes"), ("circular shape", "circular shapes"),
               ("circular figure", "circular figures"), ("circular form", "circular forms")),
    "square": (("square shape", "square shapes"), ("square figure", "square figures"), ("square form", "square forms"),
               ("square tile", "square tiles")),
    "triangle": (("triangular shape", "triangular shapes"), ("triangular figure", "triangular figures"),
                 ("triangular form", "triangular forms"), ("three-sided shape", "three-sided shapes"),
                 ("three-sided figure", "three-sided figures")),
}
COLOUR_NAMES: dict[str, tuple[str, ...]] = {
    "red": ("scarlet", "crimson", "ruby", "cherry-red", "bright red"),
    "green": ("emerald", "emerald-green", "grass-green", "leaf-green", "bright green"),
    "blue": ("royal blue", "cobalt", "cobalt-blue", "sapphire", "deep blue"),
    "yellow": ("lemon", "lemon-yellow", "canary", "canary-yellow", "sunshine-yellow", "bright yellow"),
    "purple": ("violet", "amethyst", "grape-purple", "royal purple", "deep purple"),
    "cyan": ("turquoise", "aqua", "aquamarine"),
}
SIZE_NAMES: dict[str, tuple[str, ...]] = {
    "small": ("little", "tiny", "mini", "miniature", "diminutive", "teeny"),
    "large": ("big", "huge", "giant", "enormous", "sizeable", "jumbo"),
}
