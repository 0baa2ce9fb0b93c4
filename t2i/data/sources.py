"""One entry point from a dataset name or path to an ImageCaptionSet.

"emoji" is the packaged emoji set, "shapes" the procedural shapes world, and anything else a
user folder, CSV or JSONL file (see t2i.data.folder), or a folder `t2i data prepare` wrote
(t2i.data.prepared). The names win over a local folder of the same name; write "./emoji" to
load such a folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from t2i.data.dataset import ImageCaptionSet
from t2i.data.emoji import SPLITS, emoji_search_words, load_emoji
from t2i.data.folder import load_folder
from t2i.data.prepared import is_prepared, load_prepared
from t2i.errors import InputError


def load_dataset(name_or_path: str, size: int, split: str = "train", *,
                 shapes_count: int = 20000, seed: int = 0, shapes_counting: int = 0) -> ImageCaptionSet:
    """Load a dataset by name ("emoji", "shapes") or from a folder/CSV/JSONL path.

    split: "train", "heldout" or "all".
      emoji:  ~10% of base emoji (with their skin-tone variants) are held out.
      shapes: "train" is shapes_count scenes from `seed`; "heldout" is shapes_count // 10
              fresh scenes from a separate random stream (unseen scenes, same world);
              "all" is both. shapes_counting more scenes of one shape said 2-4 times join
              "train" (t2i.data.shapes.counting_scene). shapes_count, shapes_counting and seed
              apply to "shapes" only.
      folder: "train" and "all" are the whole set; "heldout" is refused rather than
              silently handing back training images.
    """
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if shapes_counting and name_or_path != "shapes":
        raise InputError(f"counting scenes are shapes scenes: dataset {name_or_path!r} has none")
    if name_or_path == "emoji":
        return load_emoji(size, split)
    if name_or_path == "shapes":
        return _load_shapes(size, split, shapes_count, seed, shapes_counting)
    if not Path(name_or_path).expanduser().exists():
        raise InputError(f"unknown dataset {name_or_path!r}: expected emoji, shapes, or a folder/CSV/JSONL path")
    if split == "heldout":
        raise InputError(f"dataset {name_or_path!r} has no held-out split; only emoji and shapes have one")
    if is_prepared(name_or_path):
        return load_prepared(name_or_path, size)
    return load_folder(name_or_path, size)


def load_search_words(name_or_path: str, split: str = "train") -> list[list[str]] | None:
    """Words that name each image of load_dataset(name_or_path, split) beside its captions, for
    retrieval only (never trained on), or None when the data has none: emoji has emojilib's."""
    return emoji_search_words(split) if name_or_path == "emoji" else None


def _load_shapes(size: int, split: str, count: int, seed: int, counting: int) -> ImageCaptionSet:
    from t2i.data.shapes import make_training_set, stream_seed  # the renderer is only needed for this source

    if split == "train":
        return make_training_set(count, size, seed, counting)
    heldout = make_training_set(max(1, count // 10), size, stream_seed(seed, 1))
    if split == "heldout":
        return heldout
    train = make_training_set(count, size, seed, counting)
    return ImageCaptionSet(np.concatenate([train.images, heldout.images]), train.captions + heldout.captions)
