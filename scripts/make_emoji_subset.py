"""The training emoji that `t2i eval emoji --limit N` grades, as a dataset of their own.

    python scripts/make_emoji_subset.py runs/emoji100 --limit 100
    t2i train imagen-base --data runs/emoji100/data.jsonl --config imagen-emoji ...

Writes each chosen emoji's 64-pixel image and all its training captions (a JSONL manifest, as
`--data` reads). A model trained on the subset and evaluated with the same --limit is graded on
exactly the pictures it trained on: how many passes a UNet needs to draw individual emoji,
apart from how many emoji it must hold at once. `--extra N` adds N more base emoji that are not
graded, so that subsets of different sizes are graded on the same pictures:

    python scripts/make_emoji_subset.py runs/emoji400 --limit 100 --extra 300
"""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from t2i.data.emoji import load_emoji
from t2i.data.search_words import one_image_per_group
from t2i.eval.emoji import chosen_captions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="a new folder")
    p.add_argument("--limit", type=int, default=100, help="as `t2i eval emoji --limit`")
    p.add_argument("--extra", type=int, default=0, help="add N more base emoji (one image each, a fixed random choice) that the eval does not grade")
    args = p.parse_args()
    out = Path(args.out)
    if out.exists():  # never into a folder that holds something
        p.error(f"{out} exists; give a new folder")
    out.mkdir(parents=True)
    chosen, _ = chosen_captions("train", args.limit)
    data = load_emoji(64, "train")
    if args.extra:
        rest = np.setdiff1d(one_image_per_group(data), chosen)
        chosen = np.sort(np.concatenate([chosen, np.random.default_rng(1).choice(rest, size=min(args.extra, len(rest)), replace=False)]))
    rows = []
    for i in chosen:
        Image.fromarray(data.images[i]).save(out / f"{i}.png")
        rows.append({"path": f"{i}.png", "caption": list(data.captions[i])})
    (out / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{out}: {len(rows)} emoji")


if __name__ == "__main__":
    main()
