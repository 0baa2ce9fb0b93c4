"""The shapes world: a closed-vocabulary scene renderer and its truthful training captions.

The contract is docs/benchmarks/shapes-world.md. Scenes hold 1 to 4 flat shapes
(circle, square, triangle) in 6 palette colours and 2 sizes on a white S×S canvas. Pixel
coordinates are continuous: pixel (row i, column j) covers [j, j+1) × [i, i+1), y grows
downwards, and an object's (cx, cy) is the centre of its bounding box, which is also the
centre the scorer in `t2i.data.shapes_eval` measures.

Training scenes never contain a held-out pair (purple triangle, yellow square, cyan circle),
so no truthful caption can name one. Every caption accounts for every object in its scene
(at varied attribute detail), because the benchmark fails an image with objects the prompt
did not ask for: "a circle" is only ever said of a scene holding exactly one circle.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 200, 30),
    "purple": (150, 60, 190),
    "cyan": (30, 190, 200),
}
COLORS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: dict[str, float] = {"small": 0.25, "large": 0.40}  # diameter / side / height, fraction of S
HELD_OUT: tuple[tuple[str, str], ...] = (("purple", "triangle"), ("yellow", "square"), ("cyan", "circle"))
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
# the relations whose first-named object is the left or upper one; the other two are their mirrors
FIRST_LEFT_OR_TOP: tuple[str, ...] = ("to the left of", "above")
COUNT_WORDS: dict[int, str] = {2: "two", 3: "three", 4: "four"}
MAX_OBJECTS = 4
MARGIN = 0.05  # min distance of an object to the canvas edge, fraction of S
GAP = 0.05  # min distance between two bounding boxes, fraction of S
RELATION_D = 0.15  # d in the relation definitions, fraction of S
# Captions and evaluation scenes only state a relation that holds with this much slack
# (fraction of S), so it stays true for the centres the scorer measures after anti-aliasing.
RELATION_SLACK = 0.04
RELATION_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "to the left of": ("left of", "on the left of"),
    "to the right of": ("right of", "on the right of"),
    "above": ("on top of", "over"),
    "below": ("beneath", "under"),
}
CANONICAL_P = 0.5  # chance a caption uses a benchmark template when one applies
SUPERSAMPLE = 4
GRID = 32  # bounding-box corners snap to multiples of S/GRID pixels (see place_objects)


@dataclass(frozen=True)
class ShapeObject:
    """One object: shape, colour and size names, bounding-box centre (cx, cy) in pixels."""

    shape: str
    color: str
    size: str
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise InputError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.color not in PALETTE:
            raise InputError(f"unknown colour {self.color!r}; expected one of {COLORS}")
        if self.size not in SIZES:
            raise InputError(f"unknown size {self.size!r}; expected one of {tuple(SIZES)}")

    def extent(self, canvas: int) -> float:
        """Side of the bounding box in pixels (diameter, side or height) on an S=canvas image."""
        return SIZES[self.size] * canvas

    def bbox(self, canvas: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in continuous pixel coordinates."""
        half = self.extent(canvas) / 2
        return (self.cx - half, self.cy - half, self.cx + half, self.cy + half)


def is_held_out(color: str, shape: str) -> bool:
    return (color, shape) in HELD_OUT


def relation_holds(a: tuple[float, float], b: tuple[float, float], relation: str, canvas: int,
                   slack: float = 0.0) -> bool:
    """Whether centre a = (cx, cy) is `relation` of centre b on an S=canvas image.

    Exactly the spec's definition with d = 0.15·S; `slack` (pixels) tightens both inequalities.
    """
    if relation == "to the right of":
        return relation_holds(b, a, "to the left of", canvas, slack)
    if relation == "below":
        return relation_holds(b, a, "above", canvas, slack)
    d = RELATION_D * canvas
    if relation == "to the left of":
        along, across = b[0] - a[0], abs(a[1] - b[1])
    elif relation == "above":
        along, across = b[1] - a[1], abs(a[0] - b[0])
    else:
        raise InputError(f"unknown relation {relation!r}; expected one of {RELATIONS}")
    return along >= d + slack and across <= along - slack


def _check_canvas(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise InputError(f"canvas size must be an int >= 8, got {size!r}")


def _clear(candidates: np.ndarray, placed: np.ndarray, canvas: int) -> np.ndarray:
    """Which candidate boxes (K, 4) lie at least GAP·S (along x or along y) from every placed
    box (m, 4); boxes are x0 y0 x1 y1. Returns bool (K,)."""
    c, p = candidates[:, None, :], placed[None, :, :]
    gap = np.maximum(c[..., :2] - p[..., 2:], p[..., :2] - c[..., 2:]).max(-1)  # (K, m)
    return (gap >= GAP * canvas).all(axis=1)


def place_objects(rng: np.random.Generator, canvas: int, kinds: Sequence[tuple[str, str]],
                  accept: Callable[[list[ShapeObject]], bool] | None = None,
                  attempts: int = 500, candidates: int = 32) -> list[ShapeObject]:
    """Random sizes and positions for objects of the given (colour, shape) kinds, in order.

    Sizes are uniform. Bounding-box corners (x0, y0) lie on a grid of step S/32 (whole pixels
    at S = 32, even pixels at 64, so a 64px scene resized to 32 stays aligned): at S = 32 a
    small circle or triangle (8 px) whose edges fall mid-pixel loses its anti-aliased rim to
    the scorer's colour thresholds and reads as a square or circle about 6% of the time; on
    the grid it never does. Objects are placed largest first, each at the first of
    `candidates` uniform grid corners inside the margin that keeps GAP·S from the boxes
    placed so far. An attempt that finds no room, or that `accept` rejects, starts again with
    new sizes, so crowded scenes lean towards small objects (four large ones barely fit).
    """
    _check_canvas(canvas)
    n = len(kinds)
    if not 1 <= n <= MAX_OBJECTS:
        raise InputError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {n}")
    names = tuple(SIZES)
    fractions = np.array([SIZES[k] for k in names])
    step = canvas / GRID
    for _ in range(attempts):
        size_index = rng.integers(len(names), size=n)
        extents = fractions[size_index] * canvas
        first = int(np.ceil(MARGIN * canvas / step - 1e-9))
        last = np.floor(((1 - MARGIN) * canvas - extents) / step + 1e-9).astype(np.int64)
        # all candidate corners of this attempt in one draw: (n, candidates, 2)
        corners = rng.integers(first, last[:, None, None] + 1, size=(n, candidates, 2)) * step
        boxes = np.concatenate([corners, corners + extents[:, None, None]], axis=-1)  # (n, candidates, 4)
        chosen = np.empty((n, 4))
        order = np.argsort(-extents, kind="stable")
        for rank, i in enumerate(order):
            free = np.flatnonzero(_clear(boxes[i], chosen[order[:rank]], canvas)) if rank else [0]
            if len(free) == 0:
                break
            chosen[i] = boxes[i, free[0]]
        else:
            centres = (chosen[:, :2] + extents[:, None] / 2).tolist()
            objects = [ShapeObject(shape, color, names[size_index[i]], centres[i][0], centres[i][1])
                       for i, (color, shape) in enumerate(kinds)]
            if accept is None or accept(objects):
                return objects
    raise RuntimeError(f"could not place {n} objects on a {canvas}px canvas in {attempts} attempts")


def random_scene(rng: np.random.Generator, size: int, n_objects: int | None = None) -> list[ShapeObject]:
    """A random training scene: 1-4 (or n_objects) objects, no held-out colour-shape pair."""
    if n_objects is None:
        n_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    if not 1 <= n_objects <= MAX_OBJECTS:
        raise InputError(f"n_objects must be in 1..{MAX_OBJECTS}, got {n_objects}")
    kinds = []
    for _ in range(n_objects):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        kinds.append((_training_colour(rng, shape), shape))
    return place_objects(rng, size, kinds)


def _training_colour(rng: np.random.Generator, shape: str) -> str:
    """A random colour for `shape` that does not make a held-out pair."""
    allowed = [c for c in COLORS if not is_held_out(c, shape)]
    return allowed[int(rng.integers(len(allowed)))]


def stream_seed(seed: int, stream: int) -> int:
    """The seed of another random stream derived from (seed, stream): never a plain seed's own
    training stream. Stream 1 is the held-out split's, 2 the counting scenes'."""
    return int(np.random.SeedSequence((seed, stream)).generate_state(1)[0])


def render_scene(objects: Sequence[ShapeObject], size: int) -> np.ndarray:
    """Anti-aliased uint8 (size, size, 3) RGB image of the scene on white.

    Drawn at 4× with PIL, then averaged over 4×4 blocks (area downsampling). An object whose
    box spans [x0, x1) fills the hi-res pixels whose centres lie in 4·[x0, x1).
    """
    _check_canvas(size)
    k = SUPERSAMPLE
    image = Image.new("RGB", (size * k, size * k), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for obj in objects:
        x0, y0, x1, y1 = (int(np.ceil(k * v - 0.5)) for v in obj.bbox(size))
        box = (x0, y0, x1 - 1, y1 - 1)  # PIL boxes include their last pixel
        fill = PALETTE[obj.color]
        if obj.shape == "square":
            draw.rectangle(box, fill=fill)
        elif obj.shape == "circle":
            draw.ellipse(box, fill=fill)
        else:  # apex up, base at the bottom, base width = height
            draw.polygon([((box[0] + box[2]) / 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    return np.asarray(image.reduce(k), dtype=np.uint8).copy()


# ----------------------------------------------------------------------------- captions


def _phrase(count: int, shape: str, color: str | None = None, size: str | None = None) -> str:
    """'a large red circle', 'two squares', ... (size before colour, as English orders them)."""
    words = ["a" if count == 1 else COUNT_WORDS[count]]
    words += [w for w in (size, color) if w]
    words.append(shape if count == 1 else shape + "s")
    return " ".join(words)


def _join(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _centre(obj: ShapeObject) -> tuple[float, float]:
    return (obj.cx, obj.cy)


def _relations(a: ShapeObject, b: ShapeObject, canvas: int) -> list[str]:
    """Relations of a to b that hold with the caption slack."""
    slack = RELATION_SLACK * canvas
    return [r for r in RELATIONS if relation_holds(_centre(a), _centre(b), r, canvas, slack)]


def canonical_captions(objects: Sequence[ShapeObject], canvas: int) -> list[str]:
    """Every benchmark-template prompt (the six tasks) that is true of the scene."""
    n = len(objects)
    if n == 1:
        (o,) = objects
        return [f"a {o.shape}", f"a {o.color} {o.shape}"]
    out = []
    if len({o.shape for o in objects}) == 1:
        out.append(f"{COUNT_WORDS[n]} {objects[0].shape}s")
    if n == 2 and objects[0].shape != objects[1].shape:
        for a, b in (objects, objects[::-1]):
            out.append(f"a {a.shape} and a {b.shape}")
            if a.color != b.color:
                out.append(f"a {a.color} {a.shape} and a {b.color} {b.shape}")
            out += [f"a {a.shape} {r} a {b.shape}" for r in _relations(a, b, canvas)]
    return out


def _detail(rng: np.random.Generator) -> tuple[bool, bool]:
    """Whether a phrase names its colour and its size."""
    return bool(rng.random() < 0.7), bool(rng.random() < 0.35)


def _list_caption(objects: Sequence[ShapeObject], rng: np.random.Generator,
                  detail: tuple[bool, bool] | None = None) -> str:
    """All objects, grouped by the attributes named: 'two red circles and a square'."""
    same_detail = detail is not None or rng.random() < 0.8
    detail = detail or _detail(rng)
    groups: dict[tuple[str, str | None, str | None], int] = {}
    for o in objects:
        color, size = detail if same_detail else _detail(rng)
        key = (o.shape, o.color if color else None, o.size if size else None)
        groups[key] = groups.get(key, 0) + 1
    phrases = [_phrase(count, *key) for key, count in groups.items()]
    order = rng.permutation(len(phrases))
    return _join([phrases[i] for i in order])


def relation_caption(objects: Sequence[ShapeObject], rng: np.random.Generator, canvas: int) -> str | None:
    """'a large red circle on the left of a square' for a two-object scene, or None."""
    a, b = objects if rng.random() < 0.5 else objects[::-1]
    relations = _relations(a, b, canvas)
    if not relations:
        return None
    relation = relations[int(rng.integers(len(relations)))]
    words = (relation,) + RELATION_PARAPHRASES[relation]
    word = words[int(rng.integers(len(words)))]
    color, size = _detail(rng)
    pa = _phrase(1, a.shape, a.color if color else None, a.size if size else None)
    color, size = _detail(rng)
    pb = _phrase(1, b.shape, b.color if color else None, b.size if size else None)
    return f"{pa} {word} {pb}"


def caption_scene(objects: Sequence[ShapeObject], rng: np.random.Generator, size: int) -> str:
    """One true caption of the scene, at random detail.

    `size` is the canvas side S, needed because relations are defined with d = 0.15·S.
    Half the time (when one applies) the caption is a benchmark template ("a red circle",
    "two squares", "a circle above a triangle", ...); otherwise it lists every object with
    some of its attributes ("a large red circle", "two squares and a blue triangle") or, for
    two objects, relates them with a canonical relation word or a paraphrase ("beneath").
    """
    _check_canvas(size)
    if not 1 <= len(objects) <= MAX_OBJECTS:
        raise InputError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {len(objects)}")
    forms = canonical_captions(objects, size)
    if forms and rng.random() < CANONICAL_P:
        return forms[int(rng.integers(len(forms)))]
    if len(objects) == 2 and rng.random() < 0.4:
        caption = relation_caption(objects, rng, size)
        if caption is not None:
            return caption
    return _list_caption(objects, rng)


def make_training_set(n: int, size: int, seed: int, counting: int = 0) -> ImageCaptionSet:
    """n random scenes rendered at side `size`, each with 2 different true captions, then
    `counting` counting scenes (counting_scene), from their own stream: the first n are the same
    whatever `counting` is, and so are the extra scenes' first ones whatever their number.

    Deterministic in `seed`. Images are uint8 (n + counting, size, size, 3).
    """
    scenes = list(_training_scenes(n, size, seed, counting))
    images = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for i, (objects, _) in enumerate(scenes):
        images[i] = render_scene(objects, size)
    return ImageCaptionSet(images=images, captions=[pair for _, pair in scenes])


def training_captions(n: int, size: int, seed: int, counting: int = 0) -> list[list[str]]:
    """The captions of make_training_set(n, size, seed, counting), without rendering its images."""
    return [pair for _, pair in _training_scenes(n, size, seed, counting)]


def _training_scenes(n: int, size: int, seed: int, counting: int):
    """make_training_set's scenes and captions: n random ones, then `counting` counting scenes
    from stream 2 of the seed."""
    yield from _captioned_scenes(n, size, seed)
    yield from _captioned_scenes(counting, size, stream_seed(seed, 2), counting_scene)


def counting_scene(rng: np.random.Generator, size: int) -> list[ShapeObject]:
    """One shape said 2 to MAX_OBJECTS times, the number uniform, each colour drawn on its own: a scene
    that random_scene draws rarely (four of one shape in one scene of 108), so the number words
    of its captions get few examples."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    n = int(rng.integers(2, MAX_OBJECTS + 1))
    return place_objects(rng, size, [(_training_colour(rng, shape), shape) for _ in range(n)])


def _captioned_scenes(n: int, size: int, seed: int, scene: Callable[[np.random.Generator, int], list[ShapeObject]] | None = None):
    """The scenes of a training set (random_scene, or `scene`: n of them may then be 0) and
    their two different captions, in order."""
    if n < (0 if scene else 1):
        raise InputError(f"n must be >= {0 if scene else 1}, got {n}")
    _check_canvas(size)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        objects = (scene or random_scene)(rng, size)
        first = caption_scene(objects, rng, size)
        for _ in range(20):
            second = caption_scene(objects, rng, size)
            if second != first:
                break
        else:  # all attributes vs only shapes: always two different strings
            first, second = _list_caption(objects, rng, (True, True)), _list_caption(objects, rng, (False, False))
        yield objects, [first, second]
