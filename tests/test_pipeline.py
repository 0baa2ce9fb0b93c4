"""Generation from Python and from the `t2i generate` command, on the session's tiny trained unCLIP."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import PROMPTS, pixels, state_dicts_equal

import t2i
from t2i.cli import main
from t2i.unclip.options import SamplingOptions
from t2i.unclip.pipeline import UnclipPipeline

A, B = PROMPTS


@pytest.fixture(scope="module")
def pipe(tiny_run):
    return t2i.load_pipeline(str(tiny_run.pipeline))


@pytest.fixture(scope="module")
def decoder_pipe(pipe):
    """The same trained stages without the upsampler: 32x32 images straight from the decoder.

    After four training steps the upsampler's output is saturated noise that hides what came
    in; the decoder's output still carries the prompt, which the order tests need."""
    return UnclipPipeline(clip=pipe.clip, prior=pipe.prior, decoder=pipe.decoder, defaults=pipe.defaults)


@pytest.fixture(scope="module")
def decoder_pipe_folder(decoder_pipe, tmp_path_factory):
    return decoder_pipe.save(tmp_path_factory.mktemp("decoder-only") / "pipe", dtype=torch.float32)


def _components(p: UnclipPipeline):
    return {"clip": p.clip, "prior": p.prior, "decoder": p.decoder, **{f"upsampler{i}": u for i, u in enumerate(p.upsamplers)}}


def _same(xs, ys) -> bool:
    return len(xs) == len(ys) and all(np.array_equal(x, y) for x, y in zip(pixels(xs), pixels(ys)))


# ---------------------------------------------------------------- generation from Python

def test_loaded_pipeline_has_the_assembled_stages_and_preset_defaults(pipe) -> None:
    assert [c.role for c in _components(pipe).values()] == ["clip", "prior", "decoder", "upsampler"]
    assert pipe.image_size == 64 and pipe.decoder.model.config.image_size == 32
    # `assemble --config tiny` took the preset's pipeline section as the defaults
    assert pipe.defaults == SamplingOptions(prior_steps=3, decoder_steps=3, upsampler_steps=2, prior_candidates=2)
    assert all(not c.model.training for c in _components(pipe).values())


def test_generate_returns_pil_images_of_the_right_count_and_size(pipe) -> None:
    images = pipe([A, B], num_images=3, seed=0)
    assert len(images) == 6
    for im in images:
        assert isinstance(im, Image.Image) and im.size == (64, 64) and im.mode == "RGB"
    assert len(pipe(A, seed=0)) == 1  # a plain string is one prompt


def test_same_seed_same_pixels_other_seed_other_pixels(pipe) -> None:
    first = pipe([A], num_images=2, seed=7)
    again = pipe([A], num_images=2, seed=7)
    other = pipe([A], num_images=2, seed=8)
    assert _same(first, again)
    assert not np.array_equal(pixels(first)[0], pixels(other)[0])
    # the two samples of one prompt are different draws
    assert not np.array_equal(pixels(first)[0], pixels(first)[1])


def test_images_are_prompt_major(decoder_pipe) -> None:
    """[A, B] x 2 is the batch A, A, B, B: A's two samples, then B's.

    The 32x32 decoder output shows the prompt in its pixels (strong guidance amplifies it). With
    per-image noise, [A, B] x 1 gives each prompt's sample 0 (same captions, same padding): read
    prompt-major those sit at positions 0 and 2 of [A, B] x 2; read sample-major, at 0 and 1,
    with A's sample 1 at position 2."""
    kw = {"decoder_guidance": 20.0}
    batched = pixels(decoder_pipe([A, B], num_images=2, seed=3, **kw))
    first = pixels(decoder_pipe([A, B], num_images=1, seed=3, **kw))
    prompt_major = [first[0], batched[1], first[1], batched[3]]
    sample_major = [first[0], first[1], batched[1], batched[3]]
    assert len(batched) == 4 and batched[0].shape == (32, 32, 3)
    changed = lambda xs, ys: [float((x != y).mean()) for x, y in zip(xs, ys)]  # noqa: E731
    # equal: the text encoder runs on 2 rather than 4 captions, which may flip a rounding or two
    assert max(changed(batched, prompt_major)) <= 0.002
    # positions 1 and 2 then hold other images (A's sample 1 against B's sample 0), 0 and 3 the same ones
    pos0, pos1, pos2, pos3 = changed(batched, sample_major)
    assert pos0 <= 0.002 and pos3 <= 0.002 and pos1 > 0.01 and pos2 > 0.01


def test_the_prompt_changes_the_image(decoder_pipe) -> None:
    kw = {"decoder_guidance": 20.0}
    a, b = pixels(decoder_pipe([A], seed=2, **kw))[0], pixels(decoder_pipe([B], seed=2, **kw))[0]
    assert not np.array_equal(a, b)
    # guidance 0 is the unconditional decoder: the prompt no longer matters
    a0, b0 = pixels(decoder_pipe([A], seed=2, decoder_guidance=0.0))[0], pixels(decoder_pipe([B], seed=2, decoder_guidance=0.0))[0]
    assert np.array_equal(a0, b0)


def test_sampling_options_override_the_defaults(pipe, decoder_pipe) -> None:
    base = decoder_pipe([A], seed=1)
    assert _same(base, decoder_pipe([A], seed=1, decoder_steps=decoder_pipe.defaults.decoder_steps, decoder_guidance=None))
    for override in ({"decoder_steps": 5}, {"decoder_guidance": 1.0}, {"decoder_text_guidance": 8.0}, {"sampler": "ddpm"}, {"threshold": "none"}):
        assert not _same(base, decoder_pipe([A], seed=1, **override)), override
    full = pipe([A], seed=1)
    assert not _same(full, pipe([A], seed=1, upsampler_steps=4))


def test_separate_text_guidance(decoder_pipe) -> None:
    # a text scale equal to the embedding scale is plain guidance, bit for bit
    g = decoder_pipe.defaults.decoder_guidance
    assert _same(decoder_pipe([A], seed=1), decoder_pipe([A], seed=1, decoder_text_guidance=g))
    # both scales 0 leave the null condition alone: neither prompt nor embedding matters
    zero = {"decoder_guidance": 0.0, "decoder_text_guidance": 0.0}
    assert _same(decoder_pipe([A], seed=2, **zero), decoder_pipe([B], seed=2, **zero))
    # the text scale acts on its own: same embedding scale, different text scales, different images
    assert not _same(decoder_pipe([A], seed=2, decoder_guidance=g, decoder_text_guidance=0.0),
                     decoder_pipe([A], seed=2, decoder_guidance=g, decoder_text_guidance=20.0))


def test_sampling_options_are_validated(pipe) -> None:
    for bad in ({"decoder_steps": 0}, {"decoder_steps": 1001}, {"prior_steps": -1}, {"upsampler_steps": 5000},
                {"prior_guidance": -1.0}, {"decoder_guidance": 1000.0}, {"decoder_text_guidance": -0.5}, {"prior_candidates": 0},
                {"sampler": "euler"}, {"threshold": "soft"}, {"steps": 3}):
        with pytest.raises(ValueError):
            pipe([A], seed=1, **bad)
    with pytest.raises(ValueError, match="empty prompt"):
        pipe(["  "])
    with pytest.raises(ValueError, match="empty prompt"):
        pipe([A, ""])
    with pytest.raises(ValueError):
        pipe([A], num_images=0)
    with pytest.raises(ValueError):
        pipe([])


def test_variations_return_images(pipe, tiny_run) -> None:
    source = Image.open(tiny_run.data / "e00.png")
    images = pipe.variations(source, num_images=3, seed=0)
    assert len(images) == 3 and all(im.size == (64, 64) for im in images)
    assert _same(images, pipe.variations(source, num_images=3, seed=0))


def test_interpolate_returns_images(pipe, tiny_run) -> None:
    a, b = Image.open(tiny_run.data / "e00.png"), Image.open(tiny_run.data / "e03.png")
    images = pipe.interpolate(a, b, steps=4, seed=0)
    assert len(images) == 4 and all(im.size == (64, 64) for im in images)


def test_cli_variations_writes_a_grid(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "variations.png"
    assert main(["variations", str(tiny_run.data / "e00.png"), "-n", "2", "--model", str(tiny_run.pipeline), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (2 + 2 * 66, 2 + 66)  # two 64-pixel tiles side by side


def test_interpolate_needs_two_steps(pipe, tiny_run) -> None:
    a = Image.open(tiny_run.data / "e00.png")
    with pytest.raises(ValueError, match="at least 2"):
        pipe.interpolate(a, a, steps=1)


# ---------------------------------------------------------------- save / load

def test_fp32_save_load_round_trip_is_bit_identical(pipe, tmp_path) -> None:
    path = pipe.save(tmp_path / "copy", dtype=torch.float32)
    loaded = t2i.load_pipeline(str(path))
    assert loaded.defaults == pipe.defaults
    ours, theirs = _components(pipe), _components(loaded)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert theirs[name].role == ours[name].role and theirs[name].settings == ours[name].settings, name
        assert state_dicts_equal(ours[name].model, theirs[name].model), name
    assert _same(pipe([A, B], num_images=2, seed=5), loaded([A, B], num_images=2, seed=5))
    assert not list(tmp_path.glob(".copy*"))  # no temporary folder left behind


def test_fp16_save_is_half_size_loads_as_fp32_and_generates(pipe, tiny_run, tmp_path) -> None:
    path = pipe.save(tmp_path / "half")  # fp16 by default
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*.safetensors"))  # noqa: E731
    assert 0.45 < size(path) / size(tiny_run.pipeline) < 0.55
    loaded = t2i.load_pipeline(str(path))
    for name, comp in _components(loaded).items():
        original = _components(pipe)[name].model.state_dict()
        for key, value in comp.model.state_dict().items():
            if value.is_floating_point():
                assert value.dtype == torch.float32, (name, key)
                assert torch.equal(value, original[key].half().float()), (name, key)
    images = loaded([A], num_images=2, seed=0)
    assert len(images) == 2 and all(im.size == (64, 64) for im in images)
    assert _same(images, loaded([A], num_images=2, seed=0))


def test_int8_save_keeps_each_weight_within_half_a_step_of_its_row_and_generates(pipe, tiny_run, tmp_path, capsys) -> None:
    from safetensors import safe_open

    from t2i.checkpoint import INT8_SCALE

    path = pipe.save(tmp_path / "int8", dtype=torch.int8)
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*.safetensors"))  # noqa: E731
    assert 0.25 < size(path) / size(tiny_run.pipeline) < 0.35  # a quarter of fp32, plus the fp16 biases and norms and the scales
    with safe_open(str(path / "decoder" / "model.safetensors"), "pt") as f:
        kinds = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    assert "I8" in kinds.values() and all(kinds[k[: -len(INT8_SCALE)]] == "I8" for k in kinds if k.endswith(INT8_SCALE))
    loaded = t2i.load_pipeline(str(path))
    for name, comp in _components(loaded).items():
        original = _components(pipe)[name].model.state_dict()
        for key, value in comp.model.state_dict().items():
            if value.is_floating_point():
                row = original[key].reshape(len(original[key]), -1).abs().amax(1) if original[key].ndim >= 2 else original[key].abs()
                step = row.reshape(-1, *[1] * (value.ndim - 1)) / 254 if original[key].ndim >= 2 else row / 1000  # fp16: relative 1e-3
                assert value.dtype == torch.float32 and bool(((value - original[key]).abs() <= step + 1e-7).all()), (name, key)
    images = loaded([A], num_images=2, seed=0)
    assert len(images) == 2 and _same(images, loaded([A], num_images=2, seed=0))
    # through the CLI: --int8 and --fp32 exclude each other
    runs = tiny_run.runs
    stages = ["--clip", str(runs["clip"]), "--prior", str(runs["prior"]), "--decoder", str(runs["decoder"])]
    assert main(["assemble", *stages, "--int8", "-o", str(tmp_path / "cli")]) == 0 and t2i.load_pipeline(tmp_path / "cli")
    with pytest.raises(SystemExit) as exited:  # argparse's own one-line error
        main(["assemble", *stages, "--int8", "--fp32", "-o", str(tmp_path / "both")])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err and not (tmp_path / "both").exists()


def test_saving_over_a_pipeline_is_atomic(pipe, tmp_path, monkeypatch) -> None:
    """A failure while writing leaves the old pipeline folder exactly as it was."""
    import t2i.unclip.pipeline as unclip

    path = pipe.save(tmp_path / "p", dtype=torch.float32)
    before = {f.relative_to(path): f.read_bytes() for f in path.rglob("*") if f.is_file()}
    real, calls = unclip.write_component_files, []

    def failing(folder, component, **kw):
        calls.append(folder)
        if len(calls) == 3:  # clip and prior written, then the disk "fills up"
            raise OSError(28, "No space left on device")
        return real(folder, component, **kw)

    monkeypatch.setattr(unclip, "write_component_files", failing)
    with pytest.raises(OSError):
        pipe.save(path, dtype=torch.float16)
    after = {f.relative_to(path): f.read_bytes() for f in path.rglob("*") if f.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    monkeypatch.undo()
    assert state_dicts_equal(t2i.load_pipeline(str(path)).decoder.model, pipe.decoder.model)


# ---------------------------------------------------------------- the generate command

def test_cli_generate_writes_the_same_image_as_python(pipe, tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "one.png"
    assert main(["generate", A, "--model", str(tiny_run.pipeline), "--seed", "4", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        assert im.size == (64, 64)
        assert np.array_equal(np.asarray(im.convert("RGB")), pixels(pipe([A], seed=4))[0])


def test_cli_generate_options_reach_the_pipeline(decoder_pipe, decoder_pipe_folder, tmp_path) -> None:
    out = tmp_path / "steps.png"
    assert main(["--threads", "1", "generate", A, "--model", str(decoder_pipe_folder), "--seed", "4", "--decoder-steps", "5",
                 "--decoder-guidance", "7.5", "--decoder-text-guidance", "2", "--sampler", "ddpm", "-o", str(out)]) == 0
    expected = pixels(decoder_pipe([A], seed=4, decoder_steps=5, decoder_guidance=7.5, decoder_text_guidance=2.0, sampler="ddpm"))[0]
    with Image.open(out) as im:
        written = np.asarray(im.convert("RGB"))
    assert written.shape == (32, 32, 3) and np.array_equal(written, expected)
    assert not np.array_equal(written, pixels(decoder_pipe([A], seed=4))[0])


def test_cli_generate_n4_writes_a_2x2_grid(pipe, tiny_run, tmp_path) -> None:
    out = tmp_path / "grid.png"
    assert main(["generate", B, "-n", "4", "--model", str(tiny_run.pipeline), "-o", str(out)]) == 0
    with Image.open(out) as im:
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape == (2 + 2 * 66, 2 + 2 * 66, 3)  # 2x2 tiles of 64 with 2-pixel white padding
    singles = pixels(pipe([B], num_images=4, seed=0))
    for i, single in enumerate(singles):
        r, c = divmod(i, 2)
        assert np.array_equal(sheet[2 + 66 * r : 66 + 66 * r, 2 + 66 * c : 66 + 66 * c], single), i
    assert (sheet[:2] == 255).all() and (sheet[:, 66:68] == 255).all()


def test_cli_prompts_file_names_files_by_line_and_sample(decoder_pipe, decoder_pipe_folder, tmp_path, capsys) -> None:
    prompts = [A, B, "open hands"]
    listing = tmp_path / "prompts.txt"
    listing.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    out_dir = tmp_path / "out" / "nested"
    assert main(["generate", "--prompts-file", str(listing), "--out-dir", str(out_dir), "-n", "2", "--seed", "11",
                 "--decoder-guidance", "20", "--model", str(decoder_pipe_folder)]) == 0
    assert capsys.readouterr().out.strip() == str(out_dir)
    names = sorted(p.name for p in out_dir.glob("*.png"))
    assert names == [f"{line:04d}_{sample:02d}.png" for line in range(3) for sample in range(2)]
    # one chunk (3 prompts x 2 <= batch size 16) sampled with --seed: prompt-major like the Python call
    expected = pixels(decoder_pipe(prompts, num_images=2, seed=11, decoder_guidance=20.0))
    for line in range(3):
        for sample in range(2):
            with Image.open(out_dir / f"{line:04d}_{sample:02d}.png") as im:
                assert np.array_equal(np.asarray(im.convert("RGB")), expected[2 * line + sample]), (line, sample)


def test_cli_prompts_file_in_several_chunks(decoder_pipe, decoder_pipe_folder, tmp_path) -> None:
    """--batch-size 2 with -n 1: chunks of two prompts; each image's noise comes from (--seed, its line, its sample)."""
    prompts = [A, B, "open hands"]
    listing = tmp_path / "prompts.txt"
    listing.write_text("\n".join(prompts), encoding="utf-8")  # no final newline
    out = tmp_path / "o"
    assert main(["generate", "--prompts-file", str(listing), "--out-dir", str(out), "--batch-size", "2",
                 "--seed", "5", "--decoder-guidance", "20", "--model", str(decoder_pipe_folder)]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["0000_00.png", "0001_00.png", "0002_00.png"]
    expected = pixels(decoder_pipe(prompts[:2], seed=5, decoder_guidance=20.0)) + pixels(decoder_pipe(prompts[2:], seed=5, first_index=2, decoder_guidance=20.0))
    for line in range(3):
        with Image.open(out / f"{line:04d}_00.png") as im:
            assert np.array_equal(np.asarray(im.convert("RGB")), expected[line]), line


def test_assembled_pipeline_json_records_its_sources(tiny_run) -> None:
    spec = json.loads((tiny_run.pipeline / "pipeline.json").read_text())
    assert spec["format_version"] == 1 and spec["pipeline"] == "unclip"
    assert spec["upsamplers"] == ["upsampler-64"]
    assert spec["info"]["sources"]["decoder"] == str(tiny_run.run("decoder"))


def test_each_stage_can_have_its_own_sampler(pipe) -> None:
    kw = dict(seed=2, prior_steps=3, decoder_steps=3, upsampler_steps=3)
    draw = lambda **o: pixels(pipe([A], **kw, **o))[0]  # noqa: E731
    ddim, ddpm = draw(sampler="ddim"), draw(sampler="ddpm")
    assert np.array_equal(ddim, draw(prior_sampler="ddim", upsampler_sampler="ddim"))  # the defaults follow --sampler
    # the decoder alone on DDPM: unlike both all-DDIM and all-DDPM
    mixed = draw(sampler="ddpm", prior_sampler="ddim", upsampler_sampler="ddim")
    assert not np.array_equal(mixed, ddim) and not np.array_equal(mixed, ddpm)
    assert not np.array_equal(draw(prior_sampler="ddpm"), ddim) and not np.array_equal(draw(upsampler_sampler="ddpm"), ddim)
    with pytest.raises(ValueError, match=r"karras spacing sets noise levels, which ddim does not walk \(--upsampler-sampler\)"):
        pipe([A], sampler="dpmpp-2m", spacing="karras", upsampler_sampler="ddim", **kw)


def test_the_upsampler_has_its_own_thresholding(pipe) -> None:
    # --threshold used to reach the decoder only; the upsampler was fixed to static clipping
    kw = dict(seed=2, prior_steps=2, decoder_steps=2, upsampler_steps=3)
    static, none = pixels(pipe([A], upsampler_threshold="static", **kw))[0], pixels(pipe([A], upsampler_threshold="none", **kw))[0]
    assert np.array_equal(static, pixels(pipe([A], **kw))[0])  # static stays the default
    assert not np.array_equal(static, none)
    with pytest.raises(ValueError, match="upsampler-threshold must be none, static or dynamic"):
        pipe([A], upsampler_threshold="soft", **kw)
