"""Write the shapes training set plus extra two-object scenes captioned by their relation, as a
JSONL dataset for `t2i train --data`: a relation-heavy mix (about 40% of captions relational
instead of 8%), used to test whether more relation captions teach a model position.

    python scripts/make_shapes_relations.py data/shapes-relations --extra 10000
    python scripts/make_shapes_relations.py data/shapes-first-left --first-left-or-top   # see --help
    t2i train decoder --data data/shapes-relations/data.jsonl --config shapes ...
"""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from t2i.data.shapes import FIRST_LEFT_OR_TOP, RELATION_PARAPHRASES, random_scene, relation_caption, render_scene
from t2i.data.sources import load_dataset

FIRST_LEFT_OR_TOP_WORDS = tuple(f" {w} " for r in FIRST_LEFT_OR_TOP for w in (r, *RELATION_PARAPHRASES[r]))


def first_left_or_top(caption: str) -> bool:
    """Whether a relation caption puts its first-named object on the left or on top."""
    return any(w in caption for w in FIRST_LEFT_OR_TOP_WORDS)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for data.jsonl and the images")
    p.add_argument("--extra", type=int, default=10000, help="two-object scenes captioned by their relation")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=12345, help="seed of the extra scenes (the training set keeps its own)")
    p.add_argument("--first-left-or-top", action="store_true",
                   help="caption the extra scenes only with 'left of' and 'above' wordings, so that the first-named "
                        "object is always the left or upper one: their side is then the words' order alone")
    args = p.parse_args()
    (args.out / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    base = load_dataset("shapes", size=args.size)  # what `--data shapes` trains on
    for i, (image, captions) in enumerate(zip(base.images, base.captions)):
        rows.append({"path": f"img/b{i:05d}.png", "caption": captions})
        Image.fromarray(image).save(args.out / rows[-1]["path"])
    rng = np.random.default_rng(args.seed)
    while len(rows) < len(base) + args.extra:
        objects = random_scene(rng, args.size, 2)
        # up to two different relation captions; a scene where no relation holds is drawn again
        captions = [c for c in (relation_caption(objects, rng, args.size) for _ in range(6)) if c and (not args.first_left_or_top or first_left_or_top(c))]
        captions = list(dict.fromkeys(captions))[:2]
        if captions:
            rows.append({"path": f"img/r{len(rows) - len(base):05d}.png", "caption": captions})
            Image.fromarray(render_scene(objects, args.size)).save(args.out / rows[-1]["path"])
    with open(args.out / "data.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{len(rows)} images in {args.out / 'data.jsonl'}")


if __name__ == "__main__":
    main()
