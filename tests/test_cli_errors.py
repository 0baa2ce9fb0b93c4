"""Bad input to `t2i` is one line on stderr, "t2i: error: ...", and exit code 2: never a traceback."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny import env_for_subprocess

from t2i.cli import main

LONG_PROMPT = " ".join(["a small red cat sitting on a big blue box"] * 20)  # 200 words


@pytest.fixture(scope="module")
def bad(tiny_run, tmp_path_factory):
    """A folder of broken models and inputs, built once for the module."""
    root = tmp_path_factory.mktemp("bad-input")
    good = tiny_run.pipeline

    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, root / name))

    def edit_json(path: Path, **changes) -> None:
        data = json.loads(path.read_text())
        data.update(changes)
        path.write_text(json.dumps(data))

    (root / "empty-dir").mkdir()
    (root / "garbage").mkdir()
    (root / "garbage" / "pipeline.json").write_text("{this is not json")
    (root / "json-list").mkdir()
    (root / "json-list" / "pipeline.json").write_text("[1, 2, 3]")
    (root / "a-file").write_text("not a model")
    edit_json(copy("swapped-role") / "prior" / "config.json", role="decoder")
    edit_json(copy("newer-pipeline") / "pipeline.json", format_version=99)
    edit_json(copy("newer-component") / "decoder" / "config.json", format_version=99)
    shutil.rmtree(copy("missing-stage") / "decoder")
    weights = copy("truncated") / "prior" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    config = copy("wrong-shape") / "decoder" / "config.json"
    cfg = json.loads(config.read_text())
    cfg["model"]["base_channels"] = 8
    config.write_text(json.dumps(cfg))
    edit_json(copy("bad-defaults") / "pipeline.json", defaults={"decoder_steps": 0})

    (root / "corrupt.png").write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    (root / "existing-dir.png").mkdir()
    (root / "empty-prompts.txt").write_text("")
    (root / "blank-line.txt").write_text("a cat\n\na dog\n")
    (root / "prompts.txt").write_text("a cat\na dog\n")
    (root / "no-images").mkdir()
    (root / "no-images" / "readme.txt").write_text("nothing here")
    return root


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse exits by itself
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_one_line_error(argv: list[str], capsys, *mentions: str) -> str:
    code, out, err = _run(argv, capsys)
    lines = err.splitlines()
    assert code == 2, (code, err)
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("t2i: error: ") and "Traceback" not in err
    for text in mentions:
        assert text.lower() in lines[0].lower(), (text, lines[0])
    assert out == ""
    return lines[0]


# Each case: (id, argv with {model} {bad} {data} {out} placeholders, words the message must hold)
GENERATE_CASES = [
    ("empty-prompt", ["", "--model", "{model}"], ["empty prompt"]),
    ("blank-prompt", ["   ", "--model", "{model}"], ["empty prompt"]),
    ("invisible-prompt", ["\u200b", "--model", "{model}"], ["empty prompt"]),
    ("no-prompt", ["--model", "{model}"], ["give a prompt"]),
    ("missing-model", ["a cat", "--model", "{bad}/no-such-model"], ["no model", "no-such-model"]),
    ("model-is-a-file", ["a cat", "--model", "{bad}/a-file"], ["a-file"]),
    ("empty-folder", ["a cat", "--model", "{bad}/empty-dir"], ["empty-dir", "not a pipeline folder"]),
    ("garbage-pipeline-json", ["a cat", "--model", "{bad}/garbage"], ["pipeline.json", "not valid json"]),
    ("pipeline-json-not-object", ["a cat", "--model", "{bad}/json-list"], ["pipeline.json", "format_version"]),
    ("component-of-another-role", ["a cat", "--model", "{bad}/swapped-role"], ["prior", "decoder checkpoint", "expected a prior"]),
    ("component-folder-as-model", ["a cat", "--model", "{model}/decoder"], ["decoder", "not a pipeline folder"]),
    ("missing-stage-folder", ["a cat", "--model", "{bad}/missing-stage"], ["missing-stage/decoder"]),
    ("truncated-weights", ["a cat", "--model", "{bad}/truncated"], ["prior/model.safetensors", "unreadable"]),
    ("weights-do-not-fit-config", ["a cat", "--model", "{bad}/wrong-shape"], ["decoder/model.safetensors", "shape"]),
    ("bad-defaults-in-pipeline-json", ["a cat", "--model", "{bad}/bad-defaults"], ["decoder-steps"]),
    ("newer-pipeline-format", ["a cat", "--model", "{bad}/newer-pipeline"], ["99", "newer", "upgrade"]),
    ("newer-component-format", ["a cat", "--model", "{bad}/newer-component"], ["newer-component/decoder", "99", "newer"]),
    ("n-zero", ["a cat", "-n", "0", "--model", "{model}"], ["-n", "got 0"]),
    ("n-negative", ["a cat", "-n", "-1", "--model", "{model}"], ["-n", "got -1"]),
    ("decoder-steps-zero", ["a cat", "--decoder-steps", "0", "--model", "{model}"], ["decoder-steps", "got 0"]),
    ("decoder-steps-5000", ["a cat", "--decoder-steps", "5000", "--model", "{model}"], ["decoder-steps", "got 5000"]),
    ("prior-steps-zero", ["a cat", "--prior-steps", "0", "--model", "{model}"], ["prior-steps"]),
    ("prior-guidance-negative", ["a cat", "--prior-guidance", "-1", "--model", "{model}"], ["prior-guidance", "got -1"]),
    ("decoder-guidance-1000", ["a cat", "--decoder-guidance", "1000", "--model", "{model}"], ["decoder-guidance", "got 1000"]),
    ("decoder-guidance-nan", ["a cat", "--decoder-guidance", "nan", "--model", "{model}"], ["decoder-guidance", "nan"]),
    ("decoder-text-guidance-nan", ["a cat", "--decoder-text-guidance", "nan", "--model", "{model}"], ["decoder-text-guidance", "nan"]),
    ("prior-candidates-zero", ["a cat", "--prior-candidates", "0", "--model", "{model}"], ["prior-candidates"]),
    ("decoder-candidates-too-many", ["a cat", "--decoder-candidates", "65", "--model", "{model}"], ["decoder-candidates", "64"]),
    ("batch-size-zero", ["--prompts-file", "{bad}/prompts.txt", "--out-dir", "{out}/dir", "--batch-size", "0", "--model", "{model}"], ["--batch-size"]),
]
OUTPUT_CASES = [
    ("output-folder-missing", ["-o", "{out}/no/such/folder/x.png"], ["{out}/no/such/folder", "does not exist"]),
    ("output-is-a-directory", ["-o", "{bad}/existing-dir.png"], ["existing-dir.png", "is a folder"]),
    ("output-not-an-image-name", ["-o", "{out}/x.txt"], ["x.txt", ".png"]),
    ("output-without-extension", ["-o", "{out}/picture"], ["picture", ".png"]),
]
PROMPTS_FILE_CASES = [
    ("empty-file", ["--prompts-file", "{bad}/empty-prompts.txt", "--out-dir", "{out}/dir"], ["empty-prompts.txt", "no prompts"]),
    ("blank-line", ["--prompts-file", "{bad}/blank-line.txt", "--out-dir", "{out}/dir"], ["blank-line.txt", "line 1 is empty"]),
    ("missing-file", ["--prompts-file", "{bad}/no-such.txt", "--out-dir", "{out}/dir"], ["no-such.txt"]),
    ("binary-file", ["--prompts-file", "{bad}/corrupt.png", "--out-dir", "{out}/dir"], ["corrupt.png", "utf-8"]),
    ("no-out-dir", ["--prompts-file", "{bad}/prompts.txt"], ["--out-dir is required"]),
    ("out-dir-is-a-file", ["--prompts-file", "{bad}/prompts.txt", "--out-dir", "{bad}/a-file"], ["a-file", "not a folder"]),
    ("prompt-and-file", ["a cat", "--prompts-file", "{bad}/prompts.txt", "--out-dir", "{out}/dir"], ["not both"]),
]


def _fill(argv, tiny_run, bad, out) -> list[str]:
    values = {"model": str(tiny_run.pipeline), "bad": str(bad), "data": str(tiny_run.data), "out": str(out)}
    return [a.format(**values) for a in argv]


@pytest.mark.parametrize("argv, mentions", [c[1:] for c in GENERATE_CASES], ids=[c[0] for c in GENERATE_CASES])
def test_generate_bad_input(argv, mentions, tiny_run, bad, tmp_path, capsys) -> None:
    out = tmp_path / "image.png"
    argv = _fill(argv, tiny_run, bad, tmp_path)
    if "--prompts-file" not in argv:
        argv += ["-o", str(out)]
    _assert_one_line_error(["generate", *argv], capsys, *_fill(mentions, tiny_run, bad, tmp_path))
    assert not out.exists()


@pytest.mark.parametrize("argv, mentions", [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_generate_unwritable_output(argv, mentions, tiny_run, bad, tmp_path, capsys) -> None:
    argv = ["generate", "a cat", "--model", str(tiny_run.pipeline), *_fill(argv, tiny_run, bad, tmp_path)]
    _assert_one_line_error(argv, capsys, *_fill(mentions, tiny_run, bad, tmp_path))
    assert not any(tmp_path.iterdir())
    assert (bad / "existing-dir.png").is_dir() and not any((bad / "existing-dir.png").iterdir())


def test_generate_without_output_is_an_error(tiny_run, capsys) -> None:
    _assert_one_line_error(["generate", "a cat", "--model", str(tiny_run.pipeline)], capsys, "-o is required")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_generate_into_a_read_only_folder(tiny_run, tmp_path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _assert_one_line_error(["generate", "a cat", "--model", str(tiny_run.pipeline), "-o", str(locked / "x.png")], capsys, "cannot write")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("argv, mentions", [c[1:] for c in PROMPTS_FILE_CASES], ids=[c[0] for c in PROMPTS_FILE_CASES])
def test_prompts_file_bad_input(argv, mentions, tiny_run, bad, tmp_path, capsys) -> None:
    argv = ["generate", *_fill(argv, tiny_run, bad, tmp_path), "--model", str(tiny_run.pipeline)]
    _assert_one_line_error(argv, capsys, *_fill(mentions, tiny_run, bad, tmp_path))
    assert not list(tmp_path.rglob("*.png"))


def test_over_long_prompt_is_truncated_with_a_warning(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "long.png"
    with pytest.warns(UserWarning, match="truncated") as caught:
        code, stdout, _ = _run(["generate", LONG_PROMPT, "--model", str(tiny_run.pipeline), "-o", str(out)], capsys)
    assert code == 0 and stdout.strip() == str(out)
    assert len([w for w in caught if "truncated" in str(w.message)]) == 1
    with Image.open(out) as im:
        assert im.size == (64, 64)


# ---------------------------------------------------------------- variations, train, eval, assemble

def test_variations_bad_input(tiny_run, bad, tmp_path, capsys) -> None:
    model, out = str(tiny_run.pipeline), str(tmp_path / "v.png")
    _assert_one_line_error(["variations", str(bad / "no-such.png"), "--model", model, "-o", out], capsys, "no-such.png", "no such file")
    _assert_one_line_error(["variations", str(bad / "corrupt.png"), "--model", model, "-o", out], capsys, "corrupt.png", "not a readable image")
    _assert_one_line_error(["variations", str(bad), "--model", model, "-o", out], capsys, "not a readable image")
    image = str(tiny_run.data / "e00.png")
    _assert_one_line_error(["variations", image, "-n", "0", "--model", model, "-o", out], capsys, "-n", "got 0")
    _assert_one_line_error(["variations", image, "--model", str(bad / "garbage"), "-o", out], capsys, "not valid json")
    _assert_one_line_error(["variations", image, "--decoder-steps", "0", "--model", model, "-o", out], capsys, "decoder-steps")
    _assert_one_line_error(["variations", image, "--model", model, "-o", str(tmp_path / "v.txt")], capsys, ".png")
    assert not any(tmp_path.iterdir())


TRAIN_CASES = [
    ("unknown-preset", ["clip", "--data", "{data}", "--config", "no-such-preset"], ["no-such-preset", "preset"]),
    ("unknown-dataset", ["clip", "--data", "no-such-dataset", "--config", "tiny"], ["no-such-dataset", "unknown dataset"]),
    ("folder-without-images", ["clip", "--data", "{bad}/no-images", "--config", "tiny"], ["no usable images"]),
    ("prior-without-clip", ["prior", "--data", "{data}", "--config", "tiny"], ["--clip"]),
    ("decoder-without-clip", ["decoder", "--data", "{data}", "--config", "tiny"], ["--clip"]),
    ("clip-of-another-role", ["prior", "--data", "{data}", "--config", "tiny", "--clip", "{model}/decoder"], ["decoder checkpoint", "expected a clip"]),
    ("clip-missing", ["decoder", "--data", "{data}", "--config", "tiny", "--clip", "{bad}/no-such-run"], ["no-such-run"]),
    ("steps-zero", ["clip", "--data", "{data}", "--config", "tiny", "--steps", "0"], ["steps"]),
    ("lr-negative", ["clip", "--data", "{data}", "--config", "tiny", "--lr", "-1"], ["lr"]),
    ("resume-without-run", ["clip", "--data", "{data}", "--config", "tiny", "--resume"], ["no checkpoint to resume"]),
    ("resume-and-init-from", ["clip", "--data", "{data}", "--config", "tiny", "--resume", "--init-from", "{model}/clip"], ["--resume", "--init-from"]),
    ("init-from-missing", ["clip", "--data", "{data}", "--config", "tiny", "--init-from", "{bad}/no-such-run"], ["no-such-run"]),
    ("config-file-garbage", ["clip", "--data", "{data}", "--config", "{bad}/garbage/pipeline.json"], ["not valid json"]),
    ("set-without-part", ["clip", "--data", "{data}", "--config", "tiny", "--set", "drop_text=0.1"], ["PART.KEY=VALUE"]),
    ("set-unknown-part", ["clip", "--data", "{data}", "--config", "tiny", "--set", "optim.lr=1"], ["unknown part 'optim'"]),
    ("set-unknown-option", ["decoder", "--data", "{data}", "--config", "tiny", "--clip", "{model}/clip", "--set", "options.drop_txt=0.1"], ["drop_txt"]),
    ("set-bad-value", ["clip", "--data", "{data}", "--config", "tiny", "--set", "train.warmup_steps=many"], ["warmup_steps"]),
    ("set-option-not-a-number", ["decoder", "--data", "{data}", "--config", "tiny", "--clip", "{model}/clip", "--set", "options.embed_noise=much"],
     ["decoder.options.embed_noise", "a number >= 0", "'much'"]),
    ("set-rate-above-one", ["prior", "--data", "{data}", "--config", "tiny", "--clip", "{model}/clip", "--set", "options.drop_text=1.5"], ["from 0 to 1"]),
    ("set-count-fractional", ["upsampler", "--data", "{data}", "--config", "tiny", "--set", "options.max_aug_level=2.5"], ["an integer"]),
    ("set-flag-not-bool", ["clip", "--data", "{data}", "--config", "tiny", "--set", "options.hard_negatives=1"], ["true or false"]),
]


@pytest.mark.parametrize("argv, mentions", [c[1:] for c in TRAIN_CASES], ids=[c[0] for c in TRAIN_CASES])
def test_train_bad_input(argv, mentions, tiny_run, bad, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out is relative
    out = tmp_path / "run"
    argv = ["train", *_fill(argv, tiny_run, bad, tmp_path), "--out", str(out), "--no-progress"]
    _assert_one_line_error(argv, capsys, *_fill(mentions, tiny_run, bad, tmp_path))
    assert not (out / "latest").exists()


def test_resume_refuses_a_run_of_another_stage(tiny_run, capsys) -> None:
    clip_run = str(tiny_run.runs["clip"])
    _assert_one_line_error(["train", "prior", "--data", str(tiny_run.data), "--config", "tiny", "--clip", clip_run, "--out", clip_run, "--resume", "--no-progress"],
                           capsys, "holds a clip run, not a prior run")


def test_resume_refuses_a_run_record_without_its_settings(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"stage": "clip", "data": "emoji"}))
    _assert_one_line_error(["train", "clip", "--data", str(tiny_run.data), "--config", "tiny", "--out", str(out), "--resume", "--no-progress"],
                           capsys, "not a training run's record")


def test_eval_and_assemble_bad_input(tiny_run, bad, tmp_path, capsys) -> None:
    _assert_one_line_error(["eval", "shapes", "--model", str(tiny_run.pipeline), "--samples", "0"], capsys, "--samples")
    _assert_one_line_error(["eval", "emoji", "--model", str(bad / "newer-pipeline")], capsys, "newer")
    _assert_one_line_error(["eval", "shapes", "--model", str(tiny_run.pipeline), "--decoder-steps", "0"], capsys, "decoder-steps")
    runs = tiny_run.runs
    _assert_one_line_error(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["clip"]), "--decoder", str(runs["decoder"]), "-o", str(tmp_path / "p")],
                           capsys, "clip checkpoint", "expected a prior")
    _assert_one_line_error(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(tmp_path / "nothing"), "-o", str(tmp_path / "p")],
                           capsys, "nothing")
    _assert_one_line_error(["assemble", "--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"]), "--config", "no-such-preset", "-o", str(tmp_path / "p")],
                           capsys, "no-such-preset")
    assert not (tmp_path / "p").exists()


def test_threads_must_be_positive(tiny_run, tmp_path, capsys) -> None:
    _assert_one_line_error(["--threads", "0", "generate", "a cat", "--model", str(tiny_run.pipeline), "-o", str(tmp_path / "x.png")], capsys, "--threads")


# argparse's own errors (a non-number, an unknown choice, a missing argument) print a usage block
# and "t2i generate: error: ..." on several lines. Strict: passes once the parser's error() is
# one "t2i: error:" line (see the test report for the fix).
ARGPARSE_CASES = [["generate", "a cat", "-n", "abc"], ["generate", "a cat", "--sampler", "euler"], ["train", "clip"], []]


@pytest.mark.parametrize("argv", ARGPARSE_CASES, ids=["n-not-a-number", "unknown-sampler", "train-without-data", "no-command"])
def test_argparse_errors_are_one_line(argv, capsys) -> None:
    _assert_one_line_error(argv, capsys)


def test_argparse_errors_exit_2_without_traceback(capsys) -> None:
    """What holds today for argparse's own errors: exit code 2, the cause named, no traceback."""
    code, out, err = _run(["generate", "a cat", "-n", "abc"], capsys)
    assert code == 2 and "invalid int value: 'abc'" in err and "Traceback" not in err and out == ""


# ---------------------------------------------------------------- a real process, a real terminal stream

def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "t2i.cli", *argv], cwd=cwd, env=env_for_subprocess(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["missing-model", "corrupt-image"])
def test_process_prints_one_error_line_and_exits_2(case, tiny_run, bad, tmp_path) -> None:
    if case == "missing-model":
        proc = _cli("generate", "a cat", "--model", str(bad / "no-such-model"), "-o", str(tmp_path / "x.png"), cwd=tmp_path)
        cause = "no-such-model"
    else:
        proc = _cli("variations", str(bad / "corrupt.png"), "--model", str(tiny_run.pipeline), "-o", str(tmp_path / "x.png"), cwd=tmp_path)
        cause = "not a readable image"
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("t2i: error: ") and cause in lines[0], proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_process_truncates_an_over_long_prompt_with_one_warning_line(tiny_run, tmp_path) -> None:
    out = tmp_path / "long.png"
    proc = _cli("generate", LONG_PROMPT, "--model", str(tiny_run.pipeline), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("t2i: warning: ") and "truncated" in lines[0], proc.stderr
    with Image.open(out) as im:
        assert im.size == (64, 64)


def test_eval_sweep_report_and_compare_bad_input(tiny_run, tmp_path, capsys) -> None:
    model = str(tiny_run.pipeline)
    sweep = ["eval", "sweep", "--model", model, "--data", "shapes"]
    _assert_one_line_error([*sweep, "--param", "temperature", "--values", "1"], capsys, "--param", "decoder-guidance")
    _assert_one_line_error([*sweep, "--param", "decoder-guidance", "--values", "1", "x"], capsys, "number", "'x'")
    _assert_one_line_error([*sweep, "--param", "prior-guidance", "--values", "-1"], capsys, "between 0")
    _assert_one_line_error([*sweep, "--param", "steps", "--values", "2.5"], capsys, "whole number")
    _assert_one_line_error([*sweep, "--param", "sampler", "--values", "euler"], capsys, "ddim")
    _assert_one_line_error([*sweep, "--param", "steps", "--values", "2", "2"], capsys, "repeats")
    _assert_one_line_error([*sweep, "--param", "prior-candidates", "--values", "65"], capsys, "between 1 and 64")
    _assert_one_line_error(["eval", "sweep", "--model", model, "--param", "steps", "--values", "2"], capsys, "--data")
    _assert_one_line_error(["eval", "report", "--model", model, "--data", "shapes", "--sweep-values", "99", "-o", str(tmp_path / "r")], capsys, "between 0")
    _assert_one_line_error(["eval", "compare", str(tmp_path), str(tmp_path)], capsys, "report.json")
    _assert_one_line_error(["eval", "ablation", "--model", model, "--data", "faces"], capsys, "invalid choice")


def test_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:
    """Only bad input is a one-line error: a ValueError from inside t2i is a bug, not the user's
    doing, and must not be hidden behind exit code 2 (it was, while USER_ERRORS held ValueError)."""
    import t2i.commands
    from t2i.errors import InputError

    def broken(args):
        raise ValueError("an internal invariant failed")

    monkeypatch.setattr(t2i.commands, "cmd_generate", broken)
    with pytest.raises(ValueError, match="internal invariant"):
        main(["generate", "a cat", "-o", "never.png"])

    def refused(args):
        raise InputError("that value cannot be used")

    monkeypatch.setattr(t2i.commands, "cmd_generate", refused)
    assert main(["generate", "a cat", "-o", "never.png"]) == 2
    assert capsys.readouterr().err.strip() == "t2i: error: that value cannot be used"
