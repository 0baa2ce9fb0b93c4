"""Misspellings as people type them, for wordings that teach a model to read through a typo.

The text encoder splits a misspelt word into other word pieces ("trianlge" is not "triangle" to
it), so a model that never saw one reads "a blu cirlce" as noise. Most typing errors are a
single edit of a word (Damerau, 1964): two neighbouring letters swapped, a letter dropped,
doubled, or struck on a neighbouring key. `misspelt` makes one such edit, mostly in the words
that carry the picture (a shape, a colour, a count), sometimes a second one elsewhere.
"""
from __future__ import annotations

import re

import numpy as np

# the keys beside each letter on a QWERTY keyboard (same row and the rows above and below)
_NEIGHBOURS = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj", "i": "uojk", "o": "ipkl",
    "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx", "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb", "j": "huikmn",
    "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}
EDITS = ("swap", "drop", "double", "neighbour")
SECOND_TYPO_ODDS = 0.25
_WORD = re.compile(r"[A-Za-z]{4,}")  # words long enough that one edit leaves them readable


def misspell_word(rng: np.random.Generator, word: str) -> str:
    """`word` with one typing error, never at its first letter (people rarely miss that one);
    where the drawn edit cannot apply there (a swap of the last letter), the letter is doubled."""
    edit = EDITS[int(rng.integers(len(EDITS)))]
    i = int(rng.integers(1, len(word)))  # a position after the first letter
    if edit == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "drop" and len(word) > 3:
        return word[:i] + word[i + 1 :]
    if edit == "neighbour" and word[i].lower() in _NEIGHBOURS:
        key = _NEIGHBOURS[word[i].lower()]
        near = key[int(rng.integers(len(key)))]
        return word[:i] + (near.upper() if word[i].isupper() else near) + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # doubled


def misspelt(rng: np.random.Generator, text: str, prefer: re.Pattern, keep: frozenset[str] = frozenset()) -> str:
    """`text` with one typo, in a word `prefer` matches where there is one (and SECOND_TYPO_ODDS
    of the time another in any word); a typo never makes a word of `keep` (the world's own
    words, so "blue" never becomes a colour or number it is not)."""
    spans = [m.span() for m in _WORD.finditer(text)]
    preferred = [s for s in spans if prefer.fullmatch(text[s[0] : s[1]])]
    chosen = [preferred[int(rng.integers(len(preferred)))]] if preferred else []
    if spans and (not chosen or rng.random() < SECOND_TYPO_ODDS):
        other = [s for s in spans if s not in chosen]
        if other:
            chosen.append(other[int(rng.integers(len(other)))])
    for start, end in sorted(chosen, reverse=True):  # from the end, so earlier spans keep their place
        word = text[start:end]
        typo = misspell_word(rng, word)
        if typo.lower() not in keep:
            text = text[:start] + typo + text[end:]
    return text
