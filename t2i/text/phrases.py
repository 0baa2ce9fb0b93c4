"""Phrase-wise token states: each phrase a prompt lists ("a circle and a square") also encoded alone.

A bidirectional encoder spreads every word over the whole sentence: in "a green circle and a
yellow square" the states of "square" carry "green" and "circle" as well. A UNet that has never
seen a yellow square then draws the pairs it has seen (a yellow circle and a green square).
Encoded alone, "a yellow square" carries only itself, and a single unseen pair is what the UNet
does draw. Mixing each phrase's span of the prompt's token states with its states encoded alone
keeps the sentence (word order, the other phrase) and adds the binding. This is the idea of
structured diffusion guidance (Feng et al. 2023, "Training-Free Structured Diffusion Guidance
for Compositional Text-to-Image Synthesis"), who parse noun phrases and mix their encodings
into cross-attention. Here there is no parser: a prompt splits where a list joins its items
("and", "&", "+", "plus", "as well as", "along with", "together with", "with"), and at a comma
or semicolon only between two items that each name their own thing with an article or a number
("a circle, a square"; not "one circle, all red" or "circles, three of them"). The mix is of
the states.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import Tensor

from t2i.text.encoder import TextEncoder, TextEncoding

# The words that join a list's items; a comma joins two items only when each has an article or a
# number, since "one circle, all red" and "a circle, please" are one item said in two parts.
_JOINER = re.compile(r"(?:\s*[,;])?\s+(?:and|&|\+|plus|as well as|along with|together with|with)\s+", re.IGNORECASE)
_COMMA = re.compile(r"\s*[,;]\s*(?:and\s+|then\s+)?", re.IGNORECASE)
_NAMES = r"(?:a|an|the|one|two|three|four|five|six|seven|eight|nine|ten|\d+)"
_STARTS_NAMING = re.compile(rf"{_NAMES}\b", re.IGNORECASE)
_HAS_NAMING = re.compile(rf"\b{_NAMES}\b", re.IGNORECASE)


def phrase_spans(caption: str) -> list[tuple[int, int]]:
    """Character ranges of the phrases a list joins in `caption` ([] when it joins none)."""
    cuts = [m.span() for m in _JOINER.finditer(caption)]
    for m in _COMMA.finditer(caption):
        before = re.split(r"[,;]", caption[: m.start()])[-1]  # the item before this comma
        if _STARTS_NAMING.match(caption, m.end()) and _HAS_NAMING.search(before) and not _overlaps(m.span(), cuts):
            cuts.append(m.span())
    if not cuts:
        return []
    bounds = [0, *(x for span in sorted(cuts) for x in span), len(caption)]
    spans = [_trimmed(caption, a, b) for a, b in zip(bounds[::2], bounds[1::2])]
    spans = [(a, b) for a, b in spans if b > a]
    return spans if len(spans) > 1 else []


def _overlaps(span: tuple[int, int], cuts: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in cuts)


def _trimmed(text: str, a: int, b: int) -> tuple[int, int]:
    piece = text[a:b]
    return a + len(piece) - len(piece.lstrip()), b - len(piece) + len(piece.rstrip())


def mix_phrase_states(encoder: TextEncoder, captions: list[str], encoding: TextEncoding, weight: float,
                      encode: Callable[[list[str]], TextEncoding] | None = None) -> TextEncoding:
    """`encoding` (of `captions`, by `encoder`) with each phrase's token states replaced by
    (1 - weight)·in the sentence + weight·alone. Padding, [CLS], [SEP], the joining words, the
    pooled embedding and captions that list nothing are unchanged; so is any phrase whose tokens alone
    differ from its tokens in the sentence (or that truncation cut). `encode` encodes the
    phrases (default: `encoder.encode`; training passes a disk-cached one)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be between 0 and 1, got {weight}")
    if weight == 0.0:
        return encoding
    jobs = []  # (row, positions in the sentence, phrase)
    for row, caption in enumerate(captions):
        spans = phrase_spans(caption)
        if not spans:
            continue
        offsets = encoder.tokenizer.encode(caption, add_special_tokens=True).offsets
        for a, b in spans:
            positions = [j for j, (s, e) in enumerate(offsets) if 0 < j < len(offsets) - 1 and a <= s and e <= b and e > s]
            jobs.append((row, positions, caption[a:b]))
    if not jobs:
        return encoding
    phrases = sorted({phrase for _, _, phrase in jobs})  # phrases repeat across captions: encode each once
    alone, index = (encode or encoder.encode)(phrases), {phrase: k for k, phrase in enumerate(phrases)}
    tokens = encoding.tokens.clone()
    width = tokens.shape[1]
    for row, positions, phrase in jobs:
        k = index[phrase]
        n = int(alone.mask[k].sum()) - 2  # the phrase's own tokens, without [CLS] and [SEP]
        if n != len(positions) or not positions or positions[-1] >= width - 1:  # width - 1: [SEP] of a truncated caption
            continue
        own = alone.tokens[k, 1 : 1 + n].to(tokens.dtype)
        tokens[row, positions] = (1 - weight) * tokens[row, positions] + weight * own
    return TextEncoding(tokens, encoding.mask, encoding.pooled)


def phrase_table(encoder: TextEncoder, captions: list[str], encoding: TextEncoding) -> tuple[Tensor, Tensor]:
    """For training on mixed states: (row of each caption in the table, -1 for a caption that lists
    nothing; the table: those captions' token states with every phrase replaced by its own). The
    phrases' encodings are cached on disk like the captions'."""
    from t2i.text.cache import encode_cached

    def cached(phrases: list[str]) -> TextEncoding:
        enc, rows = encode_cached(phrases, max_length=encoder.max_length, layers=encoder.layers)
        return enc.select(rows)

    joined = [i for i, caption in enumerate(captions) if phrase_spans(caption)]
    row = torch.full((len(captions),), -1, dtype=torch.long)
    row[joined] = torch.arange(len(joined))
    return row, mix_phrase_states(encoder, [captions[i] for i in joined], encoding.select(joined), 1.0, encode=cached).tokens
