"""No command deletes or overwrites what it did not write (issue: `assemble -o EXISTING` once
deleted the run folders it was assembling from)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from t2i.checkpoint import OutputExistsError, atomic_folder
from t2i.cli import main


def _assemble(tiny_run, out: Path, *extra: str) -> list[str]:
    runs = tiny_run.runs
    return ["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"]),
            "--upsampler", str(runs["upsampler"]), "--fp32", "-o", str(out), *extra]


def _refused(argv: list[str], capsys, *phrases: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("t2i: error:") and "\n" not in err, err
    for phrase in phrases:
        assert phrase in err, err


def test_assemble_refuses_an_existing_folder_and_leaves_it_whole(tiny_run, tmp_path, capsys) -> None:
    # the reported case: -o is the parent of the runs being assembled, with a user file beside them
    parent = tmp_path / "work"
    runs = {stage: shutil.copytree(path, parent / stage) for stage, path in tiny_run.runs.items()}
    (parent / "notes.txt").write_text("mine")
    before = sorted(str(p.relative_to(parent)) for p in parent.rglob("*"))
    argv = ["assemble", *sum((["--" + s, str(p)] for s, p in runs.items() if s != "upsampler"), []), "--upsampler", str(runs["upsampler"]), "-o", str(parent)]
    _refused(argv, capsys, "already exists", "--overwrite")
    _refused(argv + ["--overwrite"], capsys, "not written by t2i")
    assert sorted(str(p.relative_to(parent)) for p in parent.rglob("*")) == before
    assert (parent / "notes.txt").read_text() == "mine"


def test_assemble_never_replaces_a_file(tiny_run, tmp_path, capsys) -> None:
    target = tmp_path / "model"
    target.write_text("a user's file")
    _refused(_assemble(tiny_run, target, "--overwrite"), capsys, "not written by t2i")
    assert target.read_text() == "a user's file"


def test_assemble_overwrite_replaces_only_a_pipeline_folder(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "pipe"
    assert main(_assemble(tiny_run, out)) == 0
    (out / "stale").write_text("from the old pipeline")
    _refused(_assemble(tiny_run, out), capsys, "already exists")
    assert (out / "stale").exists()
    assert main(_assemble(tiny_run, out, "--overwrite")) == 0
    assert (out / "pipeline.json").is_file() and not (out / "stale").exists()
    assert not list(tmp_path.glob(".pipe.*"))  # no temporary or old folder left beside it


def test_atomic_folder_checks_again_when_the_work_is_done(tmp_path) -> None:
    target = tmp_path / "out"
    with pytest.raises(OutputExistsError):
        with atomic_folder(target) as tmp:
            (tmp / "a").write_text("new")
            target.mkdir()  # appeared while the work ran
            (target / "b").write_text("someone else's")
    assert (target / "b").read_text() == "someone else's" and not (target / "a").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_generate_refuses_to_replace_an_image_unasked(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "x.png"
    out.write_bytes(b"not yours")
    argv = ["generate", "a cat", "--model", str(tiny_run.pipeline), "--decoder-steps", "2", "--prior-steps", "2", "--upsampler-steps", "1", "-o", str(out)]
    _refused(argv, capsys, "already exists", "--overwrite")
    assert out.read_bytes() == b"not yours"
    assert main(argv + ["--overwrite"]) == 0 and out.read_bytes()[:4] == b"\x89PNG"


def test_prompts_file_refuses_o_and_a_foreign_out_dir(tiny_run, tmp_path, capsys) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n")
    base = ["generate", "--prompts-file", str(prompts), "--model", str(tiny_run.pipeline), "--decoder-steps", "2", "--prior-steps", "2", "--upsampler-steps", "1"]
    _refused(base + ["-o", str(tmp_path / "out.png")], capsys, "--out-dir")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "0000_00.png").write_bytes(b"holiday")
    _refused(base + ["--out-dir", str(foreign)], capsys, "did not write", "--overwrite")
    assert (foreign / "0000_00.png").read_bytes() == b"holiday"
    fresh = tmp_path / "fresh"
    assert main(base + ["--out-dir", str(fresh)]) == 0
    assert main(base + ["--out-dir", str(fresh), "--seed", "1"]) == 0  # a folder t2i made may be written again


def test_eval_refuses_a_foreign_folder(tiny_run, tmp_path, capsys) -> None:
    (tmp_path / "thesis.tex").write_text("mine")
    _refused(["eval", "shapes", "--model", str(tiny_run.pipeline), "--samples", "1", "--limit", "1", "-o", str(tmp_path)], capsys, "did not write")
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_train_refuses_a_foreign_folder_and_an_existing_run(tiny_run, tmp_path, capsys) -> None:
    (tmp_path / "thesis.tex").write_text("mine")
    base = ["train", "clip", "--data", str(tiny_run.data), "--config", "tiny", "--no-progress", "--steps", "1"]
    _refused(base + ["--out", str(tmp_path)], capsys, "not a t2i run folder")
    _refused(base + ["--out", str(tmp_path / "thesis.tex")], capsys, "not a t2i run folder")
    # warm-starting into a folder that holds a run would overwrite its checkpoints
    _refused(base + ["--out", str(tiny_run.runs["clip"]), "--init-from", str(tiny_run.runs["clip"])], capsys, "already holds a run")
    assert json.loads((tiny_run.runs["clip"] / "run.json").read_text())["stage"] == "clip"


def test_replacing_a_folder_never_leaves_its_path_missing(tmp_path, monkeypatch) -> None:
    """The old folder leaves and the new one arrives in one step: a reader (a server loading the
    model, say) never finds the path missing, as it could between two renames."""
    import os

    import t2i.checkpoint
    from t2i.files import exchange

    probe_a, probe_b = tmp_path / "a", tmp_path / "b"
    probe_a.mkdir(), probe_b.mkdir()
    if not exchange(probe_a, probe_b):
        pytest.skip("no atomic exchange of paths on this system")
    target = tmp_path / "model"
    target.mkdir()
    (target / "pipeline.json").write_text("old")
    real_replace, seen = os.replace, []

    def watched_replace(src, dst):
        real_replace(src, dst)
        seen.append(target.exists())

    monkeypatch.setattr(t2i.checkpoint.os, "replace", watched_replace)
    with atomic_folder(target, overwrite=True, owned=lambda p: True) as tmp:
        (tmp / "pipeline.json").write_text("new")
    assert all(seen)
    assert (target / "pipeline.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "model"]  # nothing left behind


def test_written_models_are_readable_by_others_as_the_umask_allows(tiny_run, tmp_path) -> None:
    """safetensors writes 0600 files and mkdtemp 0700 folders; a shared model must follow the umask."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = tmp_path / "pipe"
        assert main(_assemble(tiny_run, out)) == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert modes["."] == 0o755 and modes["decoder/model.safetensors"] == 0o644
    assert all(mode in (0o755, 0o644) for mode in modes.values()), modes
