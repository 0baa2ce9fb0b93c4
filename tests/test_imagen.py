"""Imagen on the shared parts: text-conditioned UNets, noise-conditioning augmentation, guidance and
thresholding per stage, and a tiny pipeline through the CLI (train, assemble, generate, evaluate)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import pixels

import t2i
from t2i.checkpoint import CheckpointError, Component
from t2i.cli import main
from t2i.errors import InputError
from t2i.imagen.pipeline import ImagenPipeline
from t2i.imagen.stages import ImagenBaseStage
from t2i.models.unet import UNet, UNetConfig
from t2i.pipelines.sampling import run_upsampler
from t2i.text.encoder import get_text_encoder
from t2i.train.build import make_trainer, read_preset

FAST = {"base_steps": 3, "sr_steps": 2}


def _random_unet(**config) -> UNet:
    torch.manual_seed(0)
    model = UNet(UNetConfig(image_size=32, patch_size=2, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,), head_dim=16,
                            text_dim=384, pooled_text=True, context_dim=32, **config)).eval()
    with torch.no_grad():  # the output layer starts at zero: give every weight a value
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@torch.no_grad()
def test_the_text_unet_follows_the_caption_and_ignores_padding() -> None:
    model = _random_unet(text_positions=16)
    enc = get_text_encoder(16).encode(["a red circle", "a blue square to the left of a green triangle"])
    x, t = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([500, 500])
    out = model(x, t, tokens=enc.tokens, token_mask=enc.mask)
    swapped = model(x, t, tokens=enc.tokens.flip(0), token_mask=enc.mask.flip(0))
    assert (out - swapped).abs().mean() > 1e-3  # another caption, another prediction
    padded = enc.tokens.clone()
    padded[0, int(enc.mask[0].sum()):] = 100.0  # garbage at the first caption's padding positions
    assert torch.allclose(model(x, t, tokens=padded, token_mask=enc.mask), out, atol=1e-5)
    # a dropped caption (all masked) is what guidance's null branch sees: its tokens do not matter
    none = torch.zeros_like(enc.mask)
    assert torch.allclose(model(x, t, tokens=enc.tokens, token_mask=none), model(x, t, tokens=torch.randn_like(enc.tokens), token_mask=none), atol=1e-5)


def test_a_base_stage_refuses_a_unet_that_does_not_read_text_alone() -> None:
    for model in ({"image_size": 32}, {"text_dim": 384, "low_res": True}, {"text_dim": 384, "embed_dim": 8}):
        with pytest.raises(ValueError, match="reads text alone"):
            ImagenBaseStage.model_config(model, {})


@torch.no_grad()
def test_noise_augmentation_at_level_0_is_the_identity() -> None:
    model = _random_unet(low_res=True, noise_aug=True)
    seen = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append((kwargs["low_res"].clone(), kwargs["aug_level"].clone())), with_kwargs=True)
    sr = Component(model=model, role="imagen-sr", settings={"diffusion": {"objective": "v"}})
    low = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    enc = get_text_encoder(16).encode(["a red circle", "a blue square"])
    run_upsampler(sr, low, enc.tokens, enc.mask, steps=2, aug_level=0, generator=torch.Generator().manual_seed(3))
    assert seen and all(torch.equal(x, low) and (level == 0).all() for x, level in seen)
    seen.clear()
    run_upsampler(sr, low, enc.tokens, enc.mask, steps=2, aug_level=300, generator=torch.Generator().manual_seed(3))
    assert all((level == 300).all() for _, level in seen) and not torch.equal(seen[0][0], low)
    # guidance on the caption: the null branch has every token masked, the low-res image kept
    seen.clear()
    run_upsampler(sr, low, enc.tokens, enc.mask, steps=1, guidance=3.0, generator=torch.Generator().manual_seed(3))
    assert len(seen) == 1 and seen[0][0].shape[0] == 4 and torch.equal(seen[0][0][:2], seen[0][0][2:])


def test_training_batches_tell_the_unet_its_augmentation_level(tiny_run, tmp_path) -> None:
    trainer = make_trainer("imagen-sr", read_preset("tiny"), data=str(tiny_run.data), out_dir=tmp_path / "sr", progress=False)
    stage = trainer.stage
    batch = stage.batch(0, 64, torch.Generator().manual_seed(0))
    clean = stage._low(batch["x0"])
    zero, noised = batch["aug_level"] == 0, batch["aug_level"] > 0
    assert batch["aug_level"].max() <= 500 and noised.any()
    assert torch.equal(batch["low_res"][zero], clean[zero]) and not torch.equal(batch["low_res"][noised], clean[noised])
    dropped = ~batch["token_mask"].any(1)
    assert 0 < dropped.float().mean() < 0.4  # captions dropped about 10% of the time, for guidance


def test_a_tiny_imagen_trains_assembles_loads_and_generates_through_the_cli(tiny_imagen, tmp_path, capsys) -> None:
    spec = json.loads((tiny_imagen.pipeline / "pipeline.json").read_text())
    assert spec["pipeline"] == "imagen" and spec["super_res"] == ["sr-64"] and spec["defaults"]["base_steps"] == 2  # the tiny preset's imagen-pipeline section
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    assert isinstance(pipe, ImagenPipeline) and pipe.image_size == 64
    out = tmp_path / "a.png"
    assert main(["generate", "a red apple", "--model", str(tiny_imagen.pipeline), "-o", str(out), "--base-steps", "3", "--sr-steps", "2",
                 "--base-threshold", "dynamic", "--base-guidance", "5", "--sr-aug-level", "0.2"]) == 0
    image = Image.open(out)
    assert image.size == (64, 64)
    again = pipe("a red apple", seed=0, base_steps=3, sr_steps=2, base_threshold="dynamic", base_guidance=5.0, sr_aug_level=0.2)[0]
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(again))
    capsys.readouterr()
    # an unCLIP option is not an Imagen one: one line, exit 2, nothing written
    assert main(["generate", "a red apple", "--model", str(tiny_imagen.pipeline), "-o", str(tmp_path / "b.png"), "--prior-steps", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--prior-steps" in err and not (tmp_path / "b.png").exists()
    assert main(["generate", "a red apple", "--model", str(tiny_imagen.pipeline), "-o", str(tmp_path / "c.png"), "--sr-aug-level", "1.5"]) == 2
    assert "sr-aug-level must be between 0 and 1" in capsys.readouterr().err
    assert main(["variations", str(out), "--model", str(tiny_imagen.pipeline), "-o", str(tmp_path / "v.png")]) == 2
    assert "an imagen pipeline, which has none" in capsys.readouterr().err


def test_imagen_images_depend_on_seed_and_index_not_batching(tiny_imagen) -> None:
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    prompts = ["a red apple", "a blue car", "a green tree"]
    whole = pixels(pipe(prompts, num_images=2, seed=3, **FAST))
    batched = [np.asarray(im) for _, _, im in pipe.generate(prompts, num_images=2, seed=3, batch_size=2, **FAST)]
    assert all(np.array_equal(a, b) for a, b in zip(whole, batched))
    assert not np.array_equal(whole[0], whole[1])  # two samples of one prompt differ


def test_each_imagen_stage_has_its_own_guidance_and_thresholding(tiny_imagen) -> None:
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    base = pixels(pipe("a red apple", seed=1, **FAST))[0]
    for change in ({"base_guidance": 8.0}, {"base_threshold": "dynamic"}, {"sr_guidance": 4.0}, {"sr_aug_level": 0.3}):
        assert not np.array_equal(pixels(pipe("a red apple", seed=1, **FAST, **change))[0], base), change
    with pytest.raises(ValueError, match="not an option of this pipeline: --decoder-steps"):
        pipe("a red apple", decoder_steps=3)


@torch.no_grad()
def test_a_caption_memory_steers_every_imagen_unet_to_the_nearest_caption(tiny_imagen, tmp_path, capsys) -> None:
    runs, out = tiny_imagen.runs, tmp_path / "with-memory"
    assert main(["assemble", "--imagen-base", str(runs["imagen-base"]), "--imagen-sr", str(runs["imagen-sr"]), "--config", "tiny", "--fp32",
                 "--caption-memory", str(tiny_imagen.data), "-o", str(out)]) == 0
    pipe = t2i.load_pipeline(out)
    assert json.loads((out / "pipeline.json").read_text())["memory"] == "memory" and pipe.memory.caption_count == 8
    prompt = "a cute grinning face"
    nearest = pipe.memory.nearest_captions(get_text_encoder(32).encode([prompt]).pooled)[0]
    assert nearest != prompt and nearest in pipe.memory.captions
    draw = lambda text, w, **o: pixels(pipe(text, seed=2, caption_memory=w, **FAST, **o))[0]  # noqa: E731
    # at weight 1 both UNets read the nearest caption alone: the prompt draws exactly what its caption draws
    assert np.array_equal(draw(prompt, 1.0), draw(nearest, 0.0))
    assert np.array_equal(draw(prompt, 1.0, sr_guidance=3.0), draw(nearest, 0.0, sr_guidance=3.0))
    assert np.array_equal(draw(nearest, 1.0), draw(nearest, 0.0))  # a caption is its own nearest: nothing changes
    half, off = draw(prompt, 0.5), draw(prompt, 0.0)
    assert not np.array_equal(half, off) and not np.array_equal(half, draw(nearest, 0.0))
    assert np.array_equal(off, pixels(t2i.load_pipeline(tiny_imagen.pipeline)(prompt, seed=2, **FAST))[0])  # weight 0 is the pipeline without a memory
    assert main(["generate", prompt, "--model", str(tiny_imagen.pipeline), "-o", str(tmp_path / "x.png"), "--caption-memory", "1"]) == 2
    assert "needs a pipeline with a caption memory" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    # imagen-emoji's preset samples with the memory on: assembling it without one is refused
    assert main(["assemble", "--imagen-base", str(runs["imagen-base"]), "--config", "imagen-emoji", "-o", str(tmp_path / "no-memory")]) == 2
    assert "--caption-memory DATA" in capsys.readouterr().err and not (tmp_path / "no-memory").exists()


def test_steering_to_a_second_condition_blends_the_conditional_predictions() -> None:
    from t2i.diffusion.guidance import chained_guidance
    from t2i.pipelines.sampling import steered

    x0 = lambda x, t, c: x * 0 + c  # noqa: E731  (the "prediction" is the condition's value)
    null, cond, toward = ({"c": torch.full((2, 1), v)} for v in (1.0, 3.0, 7.0))
    conds, scales = steered([null, cond], [4.0], toward, 0.25)
    got = chained_guidance(x0, conds, scales)(torch.zeros(2, 1), torch.zeros(2))
    assert torch.allclose(got, torch.full((2, 1), 1 + 4 * (0.75 * 3 + 0.25 * 7 - 1)))
    assert steered([null, cond], [4.0], toward, 0.0) == ([null, cond], [4.0])
    with pytest.raises(ValueError, match="between 0 and 1"):
        steered([null, cond], [4.0], toward, 1.5)


def test_the_eval_suite_judges_an_imagen_pipeline(tiny_imagen, tmp_path, capsys) -> None:
    assert main(["eval", "shapes", "--model", str(tiny_imagen.pipeline), "--limit", "1", "--samples", "1", "--base-steps", "2", "--sr-steps", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.0 <= summary["overall"] <= 1.0 and "held_out" in summary
    assert main(["eval", "sweep", "--model", str(tiny_imagen.pipeline), "--data", "shapes", "--param", "base-guidance", "--values", "1", "3",
                 "--limit", "1", "--samples", "1", "--base-steps", "2", "--sr-steps", "1"]) == 0
    table = capsys.readouterr().out
    assert "| base_guidance |" in table and table.count("\n") == 4
    capsys.readouterr()
    assert main(["eval", "ablation", "--model", str(tiny_imagen.pipeline), "--data", "shapes", "--limit", "1"]) == 2
    assert "an imagen pipeline" in capsys.readouterr().err
    report = tmp_path / "report"
    assert main(["eval", "report", "--model", str(tiny_imagen.pipeline), "--data", "shapes", "--limit", "1", "--samples", "1", "--sweep-values", "1", "2",
                 "--base-steps", "2", "--sr-steps", "1", "-o", str(report)]) == 0
    saved = json.loads((report / "report.json").read_text())
    assert saved["sweep_param"] == "base-guidance" and set(saved["tables"]) == {"shapes", "prompts", "sweep"} and "sr-64" in saved["config"]["stages"]


def test_upsampling_is_measured_against_bicubic_on_cascade_outputs(tiny_imagen, tmp_path, capsys) -> None:
    from t2i.eval.upsampling import upsampling_benchmark

    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    first = pipe.without_upsampling()
    assert first.image_size == 32 and pipe.image_size == 64 and len(pipe.super_res) == 1  # the copy leaves the pipeline whole
    assert np.array_equal(pixels(first("a red apple", seed=2, **FAST))[0], pixels(pipe.without_upsampling()("a red apple", seed=2, **FAST))[0])
    result = upsampling_benchmark(pipe, benchmark="shapes", samples=1, limit=1, out_dir=tmp_path / "up", **FAST)
    bicubic, learned = result["rows"]
    assert bicubic["upsampling"] == "bicubic" and bicubic["size"] == "32->64"
    assert bicubic["patch_fd"] > 0 and bicubic["hf_energy_vs_real"] != learned["hf_energy_vs_real"] and 0 <= learned["shapes_overall"] <= 1
    assert (tmp_path / "up" / "upsampling.png").is_file()
    assert main(["eval", "upsampling", "--model", str(tiny_imagen.pipeline), "--data", "shapes", "--limit", "1", "--samples", "1", "--base-steps", "2", "--sr-steps", "1"]) == 0
    assert "| bicubic | 32->64 |" in capsys.readouterr().out


def test_a_base_trained_on_shallower_text_states_is_prompted_with_them(tiny_run, tmp_path) -> None:
    from t2i.train.build import override_section

    preset = override_section(read_preset("tiny"), "imagen-base", ["options.text_layers=2"])
    trainer = make_trainer("imagen-base", preset, data=str(tiny_run.data), out_dir=tmp_path / "base", progress=False)
    trainer.train()
    pipe = ImagenPipeline.assemble({"imagen-base": [tmp_path / "base"]})
    assert pipe.text_layers == 2 and pipe.image_size == 32
    shallow, full = pipe.encode_text(["a red apple"]), get_text_encoder(32).encode(["a red apple"])
    assert torch.equal(shallow.tokens, get_text_encoder(32, 2).encode(["a red apple"]).tokens)
    assert not torch.allclose(shallow.tokens, full.tokens, atol=1e-2)
    with pytest.raises(ValueError, match="text_layers must be from 0 \\(all\\) to 6"):
        make_trainer("imagen-base", override_section(preset, "imagen-base", ["options.text_layers=7"]), data=str(tiny_run.data), out_dir=tmp_path / "x")


def test_a_base_warm_starts_from_an_unclip_decoder_of_the_same_body(tiny_run, tmp_path) -> None:
    from t2i.checkpoint import load_component, resolve_component

    decoder = load_component(resolve_component(tiny_run.run("decoder"))).model.state_dict()
    with pytest.warns(UserWarning) as said:
        trainer = make_trainer("imagen-base", read_preset("tiny"), data=str(tiny_run.data), out_dir=tmp_path / "base", progress=False,
                               init_from=tiny_run.run("decoder"))
    told = " ".join(str(w.message) for w in said)
    assert "pooled_to_time.weight" in told and "text_pos" in told  # Imagen's own parts start fresh ...
    assert "have no place in this model and are left out: embed_to_time.bias, embed_to_time.weight" in told  # ... the CLIP-embedding input is dropped
    base = trainer.stage.component.model.state_dict()
    shared = set(base) & set(decoder)
    assert len(shared) > 0.9 * len(base)
    assert all(torch.equal(base[k], decoder[k]) for k in shared)
    assert not base["pooled_to_time.weight"].any()  # zero, so the base starts as the decoder does on text alone


def test_a_high_noise_expert_samples_the_noisiest_steps_of_an_assembled_imagen(tiny_imagen, tmp_path, capsys) -> None:
    expert_run = tmp_path / "expert"
    assert main(["train", "imagen-base", "--data", str(tiny_imagen.data), "--config", "tiny", "--init-from", str(tiny_imagen.runs["imagen-base"]),
                 "--steps", "2", "--set", "options.min_step=900", "--out", str(expert_run), "--no-progress"]) == 0
    pipeline = tmp_path / "with-expert"
    assert main(["assemble", "--imagen-base", str(tiny_imagen.runs["imagen-base"]), "--imagen-base", str(expert_run), "--imagen-sr",
                 str(tiny_imagen.runs["imagen-sr"]), "--config", "tiny", "--fp32", "-o", str(pipeline)]) == 0
    assert json.loads((pipeline / "pipeline.json").read_text())["base_experts"] == ["base-from-900"]
    pipe, plain = t2i.load_pipeline(pipeline), t2i.load_pipeline(tiny_imagen.pipeline)
    seen = {"base": [], "expert": []}
    for name, model in (("base", pipe.base.model), ("expert", pipe.base_experts[0].model)):
        model.register_forward_hook(lambda module, args, out, name=name: seen[name].append(int(args[1][0])))
    options = {**FAST, "base_steps": 4, "spacing": "trailing"}  # steps 999, 749, 499, 249
    with_expert = pixels(pipe("a red apple", seed=2, **options))[0]
    assert seen == {"base": [749, 499, 249], "expert": [999]}
    # turned off, the pipeline is the one without the expert, image for image
    assert np.array_equal(pixels(pipe("a red apple", seed=2, **options, base_experts="off"))[0], pixels(plain("a red apple", seed=2, **options))[0])
    assert not np.array_equal(with_expert, pixels(plain("a red apple", seed=2, **options))[0])
    with pytest.raises(CheckpointError, match="each expert must be trained from its own step up"):
        ImagenPipeline(base=plain.base, base_experts=[plain.base])  # a UNet of every step is no expert
    capsys.readouterr()
    # an expert alone is not a base: one line, exit 2
    assert main(["assemble", "--imagen-base", str(expert_run), "-o", str(tmp_path / "expert-alone")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs one imagen-base trained on every diffusion step" in err and not (tmp_path / "expert-alone").exists()


def test_an_expert_trained_in_a_few_layers_is_stored_as_its_differences_from_the_base(tiny_imagen, tmp_path, capsys) -> None:
    from safetensors import safe_open
    from tiny import state_dicts_equal

    from t2i.checkpoint import load_component, resolve_component

    base_run = tiny_imagen.runs["imagen-base"]
    expert_run = tmp_path / "expert"
    assert main(["train", "imagen-base", "--data", str(tiny_imagen.data), "--config", "tiny", "--init-from", str(base_run), "--steps", "2",
                 "--set", "options.min_step=900", "--set", "options.train_only=attn", "--out", str(expert_run), "--no-progress"]) == 0
    base, expert = load_component(resolve_component(base_run)), load_component(resolve_component(expert_run))
    theirs, ours = base.model.state_dict(), expert.model.state_dict()
    changed = {k for k in ours if not torch.equal(ours[k], theirs[k])}
    assert changed and all("attn" in k for k in changed)  # the frozen weights are the base's, bit for bit

    pipeline = tmp_path / "pipe"
    assert main(["assemble", "--imagen-base", str(base_run), "--imagen-base", str(expert_run), "--imagen-sr", str(tiny_imagen.runs["imagen-sr"]),
                 "--config", "tiny", "--fp32", "-o", str(pipeline)]) == 0
    with safe_open(str(pipeline / "base-from-900" / "model.safetensors"), "pt") as f:
        stored = set(f.keys())
    assert changed <= stored and all("attn" in k for k in stored)  # attention weights alone (some may not have moved)
    shared = json.loads((pipeline / "base-from-900" / "config.json").read_text())["shared_tensors"]
    assert set(shared) == set(ours) - stored
    pipe = t2i.load_pipeline(pipeline)
    assert state_dicts_equal(pipe.base_experts[0].model, expert.model) and state_dicts_equal(pipe.base.model, base.model)
    with pytest.raises(CheckpointError, match="load the pipeline folder"):
        load_component(pipeline / "base-from-900")
    # int8 too: the shared weights are the base's, stored once
    assert main(["assemble", "--imagen-base", str(base_run), "--imagen-base", str(expert_run), "--config", "tiny", "--int8", "-o", str(tmp_path / "int8")]) == 0
    small = t2i.load_pipeline(tmp_path / "int8")
    theirs, ours = small.base.model.state_dict(), small.base_experts[0].model.state_dict()
    assert set(json.loads((tmp_path / "int8" / "base-from-900" / "config.json").read_text())["shared_tensors"]) == set(shared)
    assert all(torch.equal(ours[k], theirs[k]) for k in shared)
    capsys.readouterr()
    assert main(["train", "imagen-base", "--data", str(tiny_imagen.data), "--config", "tiny", "--set", "options.train_only=attn,cross",
                 "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no weight of this model is named with 'cross'" in err


@torch.no_grad()
def test_sr_stages_stops_the_cascade_early_on_the_same_first_stage_images(tiny_imagen) -> None:
    """A cascade may ship a UNet it does not run by default (imagen-shapes' 64 -> 128)."""
    import dataclasses

    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    first = pixels(pipe.without_upsampling()(["a red apple", "a blue car"], seed=2, **FAST))
    stopped = pixels(pipe(["a red apple", "a blue car"], seed=2, sr_stages=0, **FAST))
    assert stopped[0].shape == (32, 32, 3) and all(np.array_equal(a, b) for a, b in zip(first, stopped))
    assert pixels(pipe("a red apple", seed=2, sr_stages=5, **FAST))[0].shape == (64, 64, 3)  # more than it has: all of them
    assert pipe.image_size == 64
    pipe.defaults = dataclasses.replace(pipe.defaults, sr_stages=0)
    assert pipe.image_size == 32 and pixels(pipe("a red apple", seed=2, **FAST))[0].shape == (32, 32, 3)
    with pytest.raises(ValueError, match="sr-stages must be 0 or more"):
        pipe("a red apple", sr_stages=-1)


@torch.no_grad()
def test_a_third_unet_is_measured_against_bicubic_resizing_of_the_stage_before_it(tiny_imagen) -> None:
    """A 64 -> 128 UNet (here the tiny 32 -> 64 one's weights at twice the size) must beat resizing
    the 64-pixel images it gets, not only the base's."""
    import dataclasses

    from t2i.eval.upsampling import upsampling_benchmark

    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    sr = pipe.super_res[0]
    big = UNet(dataclasses.replace(sr.model.config, image_size=128)).eval()
    big.load_state_dict(sr.model.state_dict())
    three = ImagenPipeline(base=pipe.base, super_res=[sr, Component(model=big, role="imagen-sr", settings={**sr.settings, "low_res_size": 64})],
                           defaults=pipe.defaults)
    assert three.image_size == 128 and pixels(three("a red apple", seed=1, sr_stages=1, **FAST))[0].shape == (64, 64, 3)
    rows = upsampling_benchmark(three, benchmark="shapes", samples=1, limit=1, **FAST)["rows"]
    assert [r["upsampling"] for r in rows] == ["bicubic", "upsamplers to 64, then bicubic", "pipeline upsampler"]
    assert {r["size"] for r in rows} == {"32->128"} and len({r["patch_fd"] for r in rows}) == 3
    assert [r["upsampling"] for r in upsampling_benchmark(three, benchmark="shapes", samples=1, limit=1, sr_stages=1, **FAST)["rows"]] == ["bicubic", "pipeline upsampler"]


def test_assemble_stores_only_the_named_components_as_int8(tiny_imagen, tmp_path, capsys) -> None:
    """`--int8 sr-64` halves the super-resolution UNet and leaves the base's fp16 bits as they were
    (imagen-shapes fits its 15 MB with a second SR UNet this way)."""
    from safetensors import safe_open

    from t2i.checkpoint import INT8_SCALE

    def dtypes(folder):
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            return {f.get_tensor(k).dtype for k in f.keys() if not k.endswith(INT8_SCALE)}

    runs = ["--imagen-base", str(tiny_imagen.runs["imagen-base"]), "--imagen-sr", str(tiny_imagen.runs["imagen-sr"]), "--config", "tiny"]
    assert main(["assemble", *runs, "-o", str(tmp_path / "fp16")]) == 0
    assert main(["assemble", *runs, "--int8", "sr-64", "-o", str(tmp_path / "mixed")]) == 0
    assert (tmp_path / "mixed" / "base" / "model.safetensors").read_bytes() == (tmp_path / "fp16" / "base" / "model.safetensors").read_bytes()
    assert dtypes(tmp_path / "mixed" / "base") == {torch.float16} and torch.int8 in dtypes(tmp_path / "mixed" / "sr-64")
    full, mixed = t2i.load_pipeline(tmp_path / "fp16"), t2i.load_pipeline(tmp_path / "mixed")
    a, b = full.super_res[0].model.state_dict(), mixed.super_res[0].model.state_dict()
    err = max((a[k] - b[k]).abs().max().item() / a[k].abs().max().clamp(min=1e-8).item() for k in a)
    assert 0 < err < 0.01  # int8 rounding: at most half a step of 1/127 of the row's largest value
    capsys.readouterr()
    assert main(["assemble", *runs, "--int8", "sr-128", "-o", str(tmp_path / "typo")]) == 2
    err_line = capsys.readouterr().err
    assert err_line.count("\n") == 1 and "no component 'sr-128'" in err_line and not (tmp_path / "typo").exists()
    with pytest.raises(InputError, match="no component 'decoder'"):
        full.save(tmp_path / "typo", dtypes={"decoder": torch.int8})
