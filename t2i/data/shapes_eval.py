"""Shapes-world benchmark: canonical prompts, the exact colour-segmentation scorer, a summary.

Follows docs/benchmarks/shapes-world.md ("Scoring an image"). Detection coordinates
are continuous pixel coordinates, pixel (row i, column j) covering [j, j+1) × [i, i+1), so a
component spanning columns j0..j1 has its bounding-box centre at (j0 + j1 + 1) / 2, the same
centre `t2i.data.shapes.render_scene` places an object at.

Held-out prompts ("a purple triangle", "a yellow square and a red circle", ...) are scored
like any other prompt of their task but counted only in the separate `held_out` figure, never
in the six task scores or `overall`, so `overall` measures the training distribution and
`held_out` measures compositional generalisation.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from t2i.data.shapes import COLORS, COUNT_WORDS, PALETTE, RELATION_SLACK, RELATIONS, SHAPES, ShapeObject, is_held_out, place_objects, relation_holds
from t2i.errors import InputError

TASKS: tuple[str, ...] = ("single_object", "two_objects", "counting", "colors", "position", "attribute_binding")
BACKGROUND_DISTANCE = 60.0  # RGB distance to white below which a pixel is background
PALETTE_DISTANCE = 90.0  # RGB distance to the nearest palette colour below which a pixel takes it
MIN_AREA = 0.015  # fraction of S² below which a component is dropped
ASPECT_RANGE = (0.7, 1.4)
MIN_SIDE = 32  # the spec defines scoring for S >= 32


@dataclass(frozen=True)
class EvalPrompt:
    """One benchmark prompt; held_out prompts name a colour-shape pair never seen in training."""

    task: str
    prompt: str
    held_out: bool


@dataclass(frozen=True)
class ParsedPrompt:
    """A canonical prompt: its task, the objects asked for as (shape, colour or None), a relation
    of objects[0] to objects[1] (position task only)."""

    task: str
    objects: tuple[tuple[str, str | None], ...]
    relation: str | None = None


@dataclass(frozen=True)
class Detection:
    """A coloured connected component: bbox (x0, y0) top-left pixel, w × h pixels, centre (cx, cy)."""

    color: str
    shape: str  # one of SHAPES or "unknown"
    area: int
    x0: int
    y0: int
    w: int
    h: int
    fill: float
    cx: float
    cy: float

    def describe(self) -> str:
        return f"{self.color} {self.shape} at ({self.cx:.1f}, {self.cy:.1f})"


@dataclass(frozen=True)
class ScoreResult:
    passed: bool
    task: str
    detections: tuple[Detection, ...]
    reason: str


# ----------------------------------------------------------------------------- prompts

_SHAPE = "(" + "|".join(SHAPES) + ")"
_COLOR = "(" + "|".join(COLORS) + ")"
_RELATION = "(" + "|".join(RELATIONS) + ")"
_COUNT = "(" + "|".join(COUNT_WORDS.values()) + ")"
_TEMPLATES = (
    ("single_object", re.compile(f"a {_SHAPE}")),
    ("colors", re.compile(f"a {_COLOR} {_SHAPE}")),
    ("two_objects", re.compile(f"a {_SHAPE} and a {_SHAPE}")),
    ("counting", re.compile(f"{_COUNT} {_SHAPE}s")),
    ("position", re.compile(f"a {_SHAPE} {_RELATION} a {_SHAPE}")),
    ("attribute_binding", re.compile(f"a {_COLOR} {_SHAPE} and a {_COLOR} {_SHAPE}")),
)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse one of the six canonical templates (case and extra spaces are forgiven)."""
    text = " ".join(prompt.lower().split())
    for task, pattern in _TEMPLATES:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        g = m.groups()
        if task == "single_object":
            return ParsedPrompt(task, ((g[0], None),))
        if task == "colors":
            return ParsedPrompt(task, ((g[1], g[0]),))
        if task == "counting":
            n = {w: k for k, w in COUNT_WORDS.items()}[g[0]]
            return ParsedPrompt(task, ((g[1], None),) * n)
        if task == "attribute_binding":
            if g[0] == g[2] or g[1] == g[3]:
                raise InputError(f"attribute_binding needs two colours and two shapes that differ: {prompt!r}")
            return ParsedPrompt(task, ((g[1], g[0]), (g[3], g[2])))
        shapes = (g[0], g[-1])
        if shapes[0] == shapes[1]:
            raise InputError(f"{task} needs two different shapes: {prompt!r}")
        return ParsedPrompt(task, ((shapes[0], None), (shapes[1], None)), g[1] if task == "position" else None)
    raise InputError(f"not a canonical shapes-world prompt: {prompt!r} "
                     "(templates: 'a circle', 'a red circle', 'a circle and a square', 'two circles', "
                     "'a circle to the left of a square', 'a red circle and a blue square')")


def _prompts_of(task: str) -> list[str]:
    """Every distinct prompt of a task, in a fixed order."""
    if task == "single_object":
        return [f"a {s}" for s in SHAPES]
    if task == "colors":
        return [f"a {c} {s}" for c in COLORS for s in SHAPES]
    if task == "two_objects":
        return [f"a {a} and a {b}" for a, b in itertools.permutations(SHAPES, 2)]
    if task == "counting":
        return [f"{w} {s}s" for w in COUNT_WORDS.values() for s in SHAPES]
    if task == "position":
        return [f"a {a} {r} a {b}" for a, b in itertools.permutations(SHAPES, 2) for r in RELATIONS]
    return [f"a {c1} {s1} and a {c2} {s2}" for c1, c2 in itertools.permutations(COLORS, 2)
            for s1, s2 in itertools.permutations(SHAPES, 2)]


def prompt_is_held_out(prompt: str) -> bool:
    """Whether a canonical prompt names a held-out colour-shape pair."""
    return any(color is not None and is_held_out(color, shape) for shape, color in parse_prompt(prompt).objects)


def _pick(prompts: list[str], count: int, rng: np.random.Generator) -> list[str]:
    """`count` prompts: a random subset when there are more, else round-robin repeats."""
    shuffled = [prompts[i] for i in rng.permutation(len(prompts))]
    return [shuffled[i % len(shuffled)] for i in range(count)]


def canonical_prompts(per_task: int = 50, seed: int = 0) -> list[EvalPrompt]:
    """The benchmark: per_task prompts for each of the six tasks, then 2·per_task held-out ones.

    Deterministic in (per_task, seed). A task with fewer distinct prompts than per_task repeats
    them round-robin (single_object has 3, so each appears about per_task/3 times); one with
    more takes a random subset. Held-out prompts are per_task `colors` prompts (the 3 held-out
    pairs, round-robin) and per_task `attribute_binding` prompts naming at least one held-out
    pair; they carry held_out=True and count only towards `held_out` in `summarize`.
    """
    if per_task < 1:
        raise InputError(f"per_task must be >= 1, got {per_task}")
    rng = np.random.default_rng(seed)
    out = []
    for task in TASKS:
        seen = [p for p in _prompts_of(task) if not prompt_is_held_out(p)]
        out += [EvalPrompt(task, p, False) for p in _pick(seen, per_task, rng)]
    for task in ("colors", "attribute_binding"):
        held = [p for p in _prompts_of(task) if prompt_is_held_out(p)]
        out += [EvalPrompt(task, p, True) for p in _pick(held, per_task, rng)]
    return out


# ----------------------------------------------------------------------------- detection

_PALETTE_RGB = np.array([PALETTE[c] for c in COLORS], dtype=np.float32)  # (6, 3)
_NEIGHBOURS = (  # half of the 8-neighbourhood: (rows of A, cols of A, rows of B, cols of B)
    (np.s_[:], np.s_[:-1], np.s_[:], np.s_[1:]),  # right
    (np.s_[:-1], np.s_[:], np.s_[1:], np.s_[:]),  # down
    (np.s_[:-1], np.s_[:-1], np.s_[1:], np.s_[1:]),  # down-right
    (np.s_[:-1], np.s_[1:], np.s_[1:], np.s_[:-1]),  # down-left
)


def classify_pixels(image: np.ndarray) -> np.ndarray:
    """uint8 (S, S, 3) -> int (S, S): palette index, or -1 for background and unassigned pixels."""
    x = image.astype(np.float32)
    background = ((255.0 - x) ** 2).sum(-1) < BACKGROUND_DISTANCE**2
    distance = ((x[:, :, None, :] - _PALETTE_RGB) ** 2).sum(-1)  # (S, S, 6)
    nearest = distance.argmin(-1)
    close = np.take_along_axis(distance, nearest[..., None], -1)[..., 0] < PALETTE_DISTANCE**2
    return np.where(close & ~background, nearest, -1)


def connected_components(labels: np.ndarray) -> np.ndarray:
    """8-connected components of equal non-negative labels.

    labels: int (H, W), -1 = no object. Returns int64 (H, W): each component's smallest flat
    pixel index, -1 elsewhere. Union-find in numpy: hook roots along same-label neighbour
    edges, then compress paths by pointer jumping, until every edge joins one root.
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got {labels.shape}")
    h, w = labels.shape
    index = np.arange(h * w).reshape(h, w)
    p, q = [], []
    for ra, ca, rb, cb in _NEIGHBOURS:
        la, lb = labels[ra, ca], labels[rb, cb]
        joined = (la >= 0) & (la == lb)
        p.append(index[ra, ca][joined])
        q.append(index[rb, cb][joined])
    p, q = np.concatenate(p), np.concatenate(q)
    parent = np.arange(h * w)
    while len(p):
        rp, rq = parent[p], parent[q]
        differ = rp != rq  # edges whose ends share a root stay joined: drop them
        p, q, rp, rq = p[differ], q[differ], rp[differ], rq[differ]
        np.minimum.at(parent, np.maximum(rp, rq), np.minimum(rp, rq))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return np.where(labels.ravel() >= 0, parent, -1).reshape(h, w)


def _shape_of(w: int, h: int, fill: float) -> str:
    if not ASPECT_RANGE[0] <= w / h <= ASPECT_RANGE[1]:
        return "unknown"
    if fill >= 0.88:
        return "square"
    if fill >= 0.65:
        return "circle"
    if fill >= 0.35:
        return "triangle"
    return "unknown"


def _check_image(image: np.ndarray) -> int:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be a uint8 (S, S, 3) array, got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")
    if image.shape[0] != image.shape[1] or image.shape[0] < MIN_SIDE:
        raise ValueError(f"image must be square with side >= {MIN_SIDE}, got {image.shape[:2]}")
    return image.shape[0]


def detect_objects(image: np.ndarray) -> list[Detection]:
    """Objects in a uint8 (S, S, 3) RGB image, S >= 32, by the spec's colour segmentation.

    Sorted top to bottom, then left to right (by bounding-box centre).
    """
    side = _check_image(image)
    labels = classify_pixels(image)
    comp = connected_components(labels).ravel()
    pixels = np.flatnonzero(comp >= 0)
    if len(pixels) == 0:
        return []
    roots, inverse, area = np.unique(comp[pixels], return_inverse=True, return_counts=True)
    rows, cols = np.divmod(pixels, side)
    bounds = np.empty((4, len(roots)), dtype=np.int64)  # row min, col min, -row max, -col max
    bounds.fill(np.iinfo(np.int64).max)
    for k, values in enumerate((rows, cols, -rows, -cols)):
        np.minimum.at(bounds[k], inverse, values)
    out = []
    flat_labels = labels.ravel()
    for i in np.flatnonzero(area >= MIN_AREA * side * side):
        y0, x0, y1, x1 = bounds[0, i], bounds[1, i], -bounds[2, i], -bounds[3, i]
        w, h = int(x1 - x0 + 1), int(y1 - y0 + 1)
        fill = float(area[i]) / (w * h)
        out.append(Detection(color=COLORS[flat_labels[roots[i]]], shape=_shape_of(w, h, fill), area=int(area[i]),
                             x0=int(x0), y0=int(y0), w=w, h=h, fill=fill,
                             cx=float(x0 + x1 + 1) / 2, cy=float(y0 + y1 + 1) / 2))
    return sorted(out, key=lambda d: (d.cy, d.cx))


# ----------------------------------------------------------------------------- scoring


def _wanted(objects: Sequence[tuple[str, str | None]]) -> str:
    return " and ".join(f"a {c} {s}" if c else f"a {s}" for s, c in objects)


def score_image(image: np.ndarray, prompt: str) -> ScoreResult:
    """Whether a uint8 (S, S, 3) image passes its canonical prompt, with the reason in words."""
    parsed = parse_prompt(prompt)
    found = tuple(detect_objects(image))
    passed, reason = _judge(parsed, found, image.shape[0])
    return ScoreResult(passed, parsed.task, found, reason)


def _judge(parsed: ParsedPrompt, found: Sequence[Detection], side: int) -> tuple[bool, str]:
    unknown = [d for d in found if d.shape == "unknown"]
    if unknown:
        d = unknown[0]
        return False, f"object of unknown shape: {d.describe()} (w={d.w}, h={d.h}, fill={d.fill:.2f})"
    listing = ", ".join(d.describe() for d in found) or "nothing"
    want = parsed.objects
    if len(found) != len(want):
        return False, f"expected {len(want)} object(s), found {len(found)}: {listing}"
    matches = [perm for perm in itertools.permutations(found)
               if all(d.shape == s and (c is None or d.color == c) for d, (s, c) in zip(perm, want))]
    if not matches:
        return False, f"expected {_wanted(want)}, found {listing}"
    if parsed.relation is not None:
        a, b = matches[0]  # position prompts name two different shapes: one match only
        if not relation_holds((a.cx, a.cy), (b.cx, b.cy), parsed.relation, side):
            return False, f"the {a.describe()} is not {parsed.relation} the {b.describe()}"
    return True, f"ok: {listing}"


def scene_for_prompt(prompt: str, rng: np.random.Generator, size: int) -> list[ShapeObject]:
    """A random ground-truth scene for a canonical prompt, objects in the prompt's order.

    Sizes and positions are random; a colour the prompt does not name is any palette colour
    (held-out pairs included: this is for evaluation). A position scene holds its relation
    with the same slack as training captions, so the scorer's measured centres agree.
    """
    parsed = parse_prompt(prompt)
    kinds = [(c if c is not None else COLORS[int(rng.integers(len(COLORS)))], s) for s, c in parsed.objects]
    accept = None
    if parsed.relation is not None:
        slack, relation = RELATION_SLACK * size, parsed.relation
        accept = lambda o: relation_holds((o[0].cx, o[0].cy), (o[1].cx, o[1].cy), relation, size, slack)  # noqa: E731
    return place_objects(rng, size, kinds, accept=accept)


def summarize(results: Sequence[tuple[EvalPrompt, bool]]) -> dict[str, float]:
    """Pass fractions: one per task present (held-out prompts excluded), `overall` = their
    mean, and `held_out`, `held_out_colors`, `held_out_attribute_binding` when present."""
    if not results:
        raise ValueError("summarize needs at least one (EvalPrompt, passed) result")
    groups: dict[str, list[bool]] = {}
    for prompt, passed in results:
        if prompt.task not in TASKS:
            raise ValueError(f"unknown task {prompt.task!r}; expected one of {TASKS}")
        keys = ["held_out", f"held_out_{prompt.task}"] if prompt.held_out else [prompt.task]
        for key in keys:
            groups.setdefault(key, []).append(bool(passed))
    out = {task: float(np.mean(groups[task])) for task in TASKS if task in groups}
    if out:
        out["overall"] = float(np.mean(list(out.values())))
    out.update({k: float(np.mean(v)) for k, v in groups.items() if k.startswith("held_out")})
    return out


__all__ = ["TASKS", "EvalPrompt", "ParsedPrompt", "Detection", "ScoreResult", "parse_prompt", "canonical_prompts",
           "prompt_is_held_out", "classify_pixels", "connected_components", "detect_objects", "score_image",
           "scene_for_prompt", "summarize"]
