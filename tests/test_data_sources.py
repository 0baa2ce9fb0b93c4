"""The packaged emoji set, the user-data loader and the load_dataset dispatcher."""
from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2i.data.emoji import load_emoji
from t2i.data.folder import load_folder
from t2i.data.sources import load_dataset

RED = (200, 30, 40)


# ---------------------------------------------------------------- emoji

def test_emoji_loads_fast_with_right_shapes() -> None:
    start = time.perf_counter()
    every = load_emoji(64, "all")
    assert time.perf_counter() - start < 5.0  # ~0.5 s alone; generous for a shared CPU
    assert every.images.dtype == np.uint8 and every.images.shape[1:] == (64, 64, 3)
    assert len(every) > 3000 and len(every.captions) == len(every) == len(every.names)
    # Emoji sit on white: the corners of nearly every tile are white
    assert (every.images[:, 0, 0] == 255).all(axis=1).mean() > 0.9


def test_emoji_splits_are_disjoint_by_group_and_deterministic() -> None:
    train, held, every = load_emoji(64, "train"), load_emoji(64, "heldout"), load_emoji(64, "all")
    assert len(train) + len(held) == len(every)
    assert not set(train.groups.tolist()) & set(held.groups.tolist())
    n_groups = len(np.unique(every.groups))
    assert 0.07 < len(np.unique(held.groups)) / n_groups < 0.13
    assert 0.07 < len(held) / len(every) < 0.13
    again = load_emoji(64, "heldout")
    assert held.names == again.names and np.array_equal(held.images, again.images)
    # Callers get copies, so editing one result cannot corrupt the cached decode
    again.images[:] = 0
    assert load_emoji(64, "heldout").images.max() == 255


def test_emoji_captions_are_plain_lower_case() -> None:
    every = load_emoji(64, "all")
    for caps, name in zip(every.captions, every.names):
        assert caps and name == caps[0]
        # no shortcode left (":smile:"); a colon between digits is a time, as the clock keywords' "10:30"
        assert all(c and c == c.lower() and not re.search(r":(?!\d)|(?<!\d):", c) and "_" not in c for c in caps)
    by_name = {n: i for i, n in enumerate(every.names)}
    assert "grinning face with big eyes" in by_name
    tone = every.names.index("waving hand, medium skin tone")
    assert every.groups[tone] == every.groups[by_name["waving hand"]]


def test_emoji_downsample_and_bad_arguments() -> None:
    small = load_emoji(32, "train")
    assert small.images.shape[1:] == (32, 32, 3) and small.images.dtype == np.uint8
    assert len(small) == len(load_emoji(64, "train"))
    with pytest.raises(ValueError, match="split"):
        load_emoji(64, "test")
    with pytest.raises(ValueError, match="size"):
        load_emoji(128)


# ---------------------------------------------------------------- user folders

def _png(path: Path, colour: tuple[int, ...], size: tuple[int, int] = (40, 24), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """4 images: red, a half-transparent blue in a subfolder, a green JPEG, one without caption,
    plus a corrupt PNG with a caption."""
    _png(tmp_path / "red.png", RED)
    (tmp_path / "red.txt").write_text("a red square\n\n  red block  \n")
    _png(tmp_path / "sub" / "clear.png", (0, 0, 255, 0), mode="RGBA")
    (tmp_path / "sub" / "clear.txt").write_text("nothing at all\n")
    _png(tmp_path / "green.jpg", (20, 160, 40), size=(30, 50))
    (tmp_path / "green.txt").write_text("green\n")
    _png(tmp_path / "nocaption.png", (0, 0, 0))
    (tmp_path / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "broken.txt").write_text("never loads\n")
    return tmp_path


def test_folder_loads_captions_sizes_and_warns_once(folder: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_folder(folder, 16)
    assert len(caught) == 1
    assert "skipped 2 of 5 images" in str(caught[0].message)
    assert "1 unreadable, 1 without caption" in str(caught[0].message)
    assert data.images.shape == (3, 16, 16, 3) and data.images.dtype == np.uint8
    red = data.names.index("red")
    assert data.captions[red] == ["a red square", "red block"]
    assert np.abs(data.images[red].astype(int) - RED).max() <= 1
    # Fully transparent pixels become the white background
    assert (data.images[data.names.index("clear")] == 255).all()


def test_csv_and_jsonl_merge_rows_per_path(folder: Path) -> None:
    (folder / "data.csv").write_text('path,caption\nred.png,a red square\nred.png,"crimson, bright"\n'
                                     "sub/clear.png,white\nmissing.png,gone\n")
    with pytest.warns(UserWarning, match="skipped 1 of 3 images .*1 missing"):
        from_csv = load_folder(folder / "data.csv", 8)
    assert from_csv.captions[0] == ["a red square", "crimson, bright"] and len(from_csv) == 2
    lines = [{"path": "red.png", "caption": "red"}, {"path": "./red.png", "caption": ["scarlet", "red"]},
             {"path": "green.jpg", "caption": "green"}]
    (folder / "data.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, so nothing to warn about
        from_jsonl = load_folder(folder / "data.jsonl", 8)
    assert from_jsonl.captions == [["red", "scarlet"], ["green"]]
    assert from_jsonl.images.shape == (2, 8, 8, 3)


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_folder(tmp_path / "nope", 16)
    (tmp_path / "only.png").write_bytes(b"not an image")
    (tmp_path / "only.txt").write_text("caption\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="no usable images.*1 unreadable"):
            load_folder(tmp_path, 16)
    (tmp_path / "bad.csv").write_text("file,text\na.png,b\n")
    with pytest.raises(ValueError, match="'path' and 'caption'"):
        load_folder(tmp_path / "bad.csv", 16)
    (tmp_path / "bad.jsonl").write_text('{"path": "a.png"}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_folder(tmp_path / "bad.jsonl", 16)


# ---------------------------------------------------------------- dispatcher

def test_load_dataset_dispatch(folder: Path) -> None:
    assert len(load_dataset("emoji", 32, "heldout")) == len(load_emoji(32, "heldout"))
    with pytest.warns(UserWarning):
        assert len(load_dataset(str(folder), 8)) == 3
    with pytest.raises(ValueError, match="unknown dataset 'x': expected emoji, shapes"):
        load_dataset("x", 32)
    with pytest.raises(ValueError, match="held-out"):
        load_dataset(str(folder), 8, "heldout")
    with pytest.raises(ValueError, match="split"):
        load_dataset("emoji", 32, "val")


def test_load_dataset_shapes() -> None:
    pytest.importorskip("t2i.data.shapes")
    train = load_dataset("shapes", 32, shapes_count=20, seed=1)
    held = load_dataset("shapes", 32, "heldout", shapes_count=20, seed=1)
    assert train.images.shape == (20, 32, 32, 3) and held.images.shape == (2, 32, 32, 3)
    assert not any(np.array_equal(h, t) for h in held.images for t in train.images)
    assert len(load_dataset("shapes", 32, "all", shapes_count=20, seed=1)) == 22
    counted = load_dataset("shapes", 32, shapes_count=20, seed=1, shapes_counting=5)  # more scenes of one shape, in "train" only
    assert len(counted) == 25 and np.array_equal(counted.images[:20], train.images)
    assert len(load_dataset("shapes", 32, "heldout", shapes_count=20, seed=1, shapes_counting=5)) == 2
    with pytest.raises(ValueError, match="counting scenes are shapes scenes"):
        load_dataset("emoji", 32, shapes_counting=5)
