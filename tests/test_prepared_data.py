"""`t2i data prepare`: a user folder decoded once into a memory-mapped dataset that trains exactly
as the folder does, with every skipped file named."""
from __future__ import annotations

import csv
import json
import shutil
import warnings

import numpy as np
import pytest

from t2i.cli import main
from t2i.data.sources import load_dataset


@pytest.fixture()
def source(tiny_run, tmp_path):
    """The tiny run's emoji folder plus a corrupt image and an image without a caption."""
    src = tmp_path / "src"
    shutil.copytree(tiny_run.data, src)
    (src / "broken.png").write_bytes(b"not a png")
    (src / "broken.txt").write_text("a broken picture\n")
    shutil.copy(next(src.glob("*.png")), src / "uncaptioned.png")
    return src


def test_prepare_writes_what_the_folder_loads_and_names_what_it_skipped(source, tmp_path, capsys) -> None:
    out = tmp_path / "prepared"
    assert main(["data", "prepare", str(source), "-o", str(out), "--size", "16", "--workers", "2", "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "8 images at 16x16" in said and "skipped 2" in said and "broken.png" in said and "uncaptioned.png" in said
    rows = (out / "skipped.tsv").read_text().splitlines()
    assert rows[0] == "reason\tpath" and sorted(r.split("\t")[0] for r in rows[1:]) == ["unreadable", "without caption"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["count"] == 8 and info["size"] == 16 and info["skipped"] == {"without caption": 1, "unreadable": 1}
    prepared = load_dataset(str(out), size=16)
    with pytest.warns(UserWarning, match="skipped 2 of 10 images"):
        folder = load_dataset(str(source), size=16)
    assert isinstance(prepared.images, np.memmap) and prepared.images.shape == (8, 16, 16, 3)  # on disk, not in memory
    assert np.array_equal(np.asarray(prepared.images), folder.images) and prepared.captions == folder.captions and prepared.names == folder.names
    with pytest.warns(UserWarning, match="prepared at 16x16; resizing all 8 images to 8x8"):
        assert load_dataset(str(out), size=8).images.shape == (8, 8, 8, 3)


def test_skipped_names_with_tabs_and_line_breaks_stay_one_row(tiny_run, tmp_path, capsys) -> None:
    src = tmp_path / "odd"
    shutil.copytree(tiny_run.data, src)
    odd = "tab\there\nnewline.png"
    (src / odd).write_bytes(b"not a png")
    (src / odd.replace(".png", ".txt")).write_text("an odd name\n")
    assert main(["data", "prepare", str(src), "-o", str(tmp_path / "out"), "--size", "16", "--no-progress"]) == 0
    with (tmp_path / "out" / "skipped.tsv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows == [["reason", "path"], ["unreadable", str(src / odd)]]
    said = capsys.readouterr().out
    assert len(said.splitlines()) == 1 and repr(str(src / odd)) in said  # the summary stays one line, the name escaped


def test_training_from_a_prepared_dataset_is_training_from_the_folder(source, tmp_path) -> None:
    out = tmp_path / "prepared"
    assert main(["data", "prepare", str(source), "-o", str(out), "--size", "32", "--no-progress"]) == 0
    losses = {}
    for name, data in (("folder", source), ("prepared", out)):
        run = tmp_path / f"run-{name}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the folder's skipped files
            assert main(["train", "imagen-base", "--data", str(data), "--config", "tiny", "--steps", "3", "--set", "train.log_every=1",
                         "--no-progress", "--out", str(run)]) == 0
        losses[name] = [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert len(losses["folder"]) == 3 and losses["prepared"] == losses["folder"]  # the same batches, bit for bit


def test_an_existing_output_or_a_damaged_dataset_is_a_one_line_error(source, tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):  # a folder t2i did not write is never replaced
        assert main(["data", "prepare", str(source), "-o", str(mine), "--size", "8", "--no-progress", *extra]) == 2
    assert (mine / "notes.txt").read_text() == "keep me"
    out = tmp_path / "prepared"
    assert main(["data", "prepare", str(source), "-o", str(out), "--size", "8", "--no-progress"]) == 0
    assert main(["data", "prepare", str(source), "-o", str(out), "--size", "8", "--no-progress", "--overwrite"]) == 0  # its own: replaced
    with (out / "images.u8").open("r+b") as f:
        f.truncate(100)
    capsys.readouterr()
    assert main(["train", "imagen-base", "--data", str(out), "--config", "tiny", "--steps", "1", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "images.u8: expected 1536 bytes for 8 images of 8x8, found 100" in err
    assert main(["data", "prepare", str(source), "-o", str(tmp_path / "x"), "--size", "0"]) == 2
