"""One UNet stage trains any mix of conditions: what unCLIP's decoder and upsampler use, and what
Imagen's UNets will (text alone; a low-res image with the caption)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from t2i.checkpoint import Component, build_model
from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError
from t2i.train.options import UNetOptions
from t2i.train.stages import GroupDraw
from t2i.train.trainer import TrainConfig, Trainer
from t2i.train.unet_stage import CONTRAST_TEMPERATURE, UNetStage

TINY_UNET = {"image_size": 16, "base_channels": 16, "channel_mults": [1, 2], "num_res_blocks": 1, "attention_levels": [1], "head_dim": 16, "context_dim": 32}


def _train(model: dict, tiny_run, tmp_path) -> tuple[Trainer, dict]:
    options = UNetOptions(drop_text=0.2, low_res_size=8, max_aug_level=100)
    torch.manual_seed(0)
    settings = {"diffusion": {"objective": "v", "weighting": "min_snr"}, **UNetStage.settings(options, model)}
    component = Component(model=build_model("unet", {**TINY_UNET, **model}), role="unet", settings=settings)
    stage = UNetStage.from_data(component, str(tiny_run.data), options, {}, ())
    trainer = Trainer(stage, TrainConfig(steps=4, batch_size=4, lr=1e-3, warmup_steps=0, log_every=2, sample_every=4, save_every=4), tmp_path / "run", progress=False)
    return trainer, trainer.train()


def test_a_unet_trains_on_text_alone(tiny_run, tmp_path) -> None:
    trainer, figures = _train({"text_dim": 384, "pooled_text": True}, tiny_run, tmp_path)
    batch = trainer.stage.batch(0, 4, torch.Generator().manual_seed(0))
    assert set(batch) == {"x0", "tokens", "token_mask"}  # no image embedding, no CLIP needed
    assert trainer.step == 4 and math.isfinite(figures["preview_mse"])
    assert (tmp_path / "run" / "samples" / "step-00000004.png").is_file()


def test_an_upsampler_that_reads_the_caption(tiny_run, tmp_path) -> None:
    trainer, figures = _train({"text_dim": 384, "low_res": True, "noise_aug": True}, tiny_run, tmp_path)
    batch = trainer.stage.batch(0, 4, torch.Generator().manual_seed(0))
    assert set(batch) == {"x0", "tokens", "token_mask", "low_res", "aug_level"}
    assert batch["low_res"].shape == (4, 3, 8, 8) and int(batch["aug_level"].max()) <= 100
    assert trainer.stage.component.settings["low_res_size"] == 8 and math.isfinite(figures["preview_mse"])


def _text_unet() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model("unet", {**TINY_UNET, "text_dim": 384})
    with torch.no_grad():  # a fresh UNet's zeroed output layers would predict the same for any caption
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


def _text_stage(tiny_run, teacher: bool = False, **options) -> UNetStage:
    model = _text_unet()
    settings = {"diffusion": {"objective": "v"}}
    needs = {"teacher": Component(model=copy.deepcopy(model), role="unet", settings=settings)} if teacher else {}
    return UNetStage.from_data(Component(model=model, role="unet", settings=settings), str(tiny_run.data), UNetOptions(drop_text=0.0, **options),
                               needs, ("{a} {c}", "a drawing of {a} {c}"))


def test_text_consistency_pulls_rephrased_captions_toward_the_starting_models(tiny_run) -> None:
    plain = _text_stage(tiny_run, caption_augment=0.5)
    pulled = _text_stage(tiny_run, teacher=True, caption_augment=0.5, text_consistency=2.0)
    a, b = (s.batch(0, 8, torch.Generator().manual_seed(3)) for s in (plain, pulled))
    assert torch.equal(a["tokens"], b["tokens"]) and torch.equal(a["x0"], b["x0"])  # the same draws as without it
    assert bool(b["reworded"].any()) and not bool(b["reworded"].all())  # half the captions are rephrased
    model = pulled.component.model
    loss_plain = plain.loss(model, a, torch.Generator().manual_seed(5))
    loss_pulled = pulled.loss(model, b, torch.Generator().manual_seed(5))
    # the pull: the rephrased rows' squared distance to the frozen model's prediction from the caption
    assert float(loss_pulled) > float(loss_plain) + 1e-6
    b["reworded"][:] = False
    assert torch.allclose(pulled.loss(model, b, torch.Generator().manual_seed(5)), loss_plain)
    loss_pulled.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert all(p.grad is None and not p.requires_grad for p in pulled.teacher.parameters())


def test_text_consistency_needs_rephrased_captions_and_a_starting_model(tiny_run) -> None:
    with pytest.raises(InputError, match="caption_augment"):
        _text_stage(tiny_run, teacher=True, text_consistency=1.0)
    with pytest.raises(InputError, match="init-from"):
        _text_stage(tiny_run, caption_augment=0.5, text_consistency=1.0)


def _relation_folder(folder) -> str:
    """Four two-object scenes whose captions each have hard negatives (a relation flip, a colour swap)."""
    from PIL import Image

    from t2i.data.shapes import ShapeObject, render_scene

    folder.mkdir()
    scenes = [("red", "circle", "blue", "square"), ("green", "triangle", "red", "circle"), ("blue", "square", "green", "triangle"), ("yellow", "circle", "red", "triangle")]
    for n, (c1, s1, c2, s2) in enumerate(scenes):
        left, right = ShapeObject(s1, c1, "large", 10.0, 16.0), ShapeObject(s2, c2, "large", 22.0, 16.0)
        Image.fromarray(render_scene([left, right], 32)).save(folder / f"s{n}.png")
        (folder / f"s{n}.txt").write_text(f"a {c1} {s1} to the left of a {c2} {s2}\n", encoding="utf-8")
    return str(folder)


def _contrast_stage(data: str, **options) -> UNetStage:
    component = Component(model=_text_unet(), role="unet", settings={"diffusion": {"objective": "v"}})
    return UNetStage.from_data(component, data, UNetOptions(drop_text=0.0, **options), {}, ())


def test_caption_contrast_is_a_soft_hinge_on_how_much_better_the_caption_denoises(tmp_path) -> None:
    data = _relation_folder(tmp_path / "relations")
    plain, contrast = _contrast_stage(data), _contrast_stage(data, caption_contrast=2.0)
    a, b = (s.batch(0, 8, torch.Generator().manual_seed(3)) for s in (plain, contrast))
    assert torch.equal(a["tokens"], b["tokens"]) and torch.equal(a["x0"], b["x0"])  # the same draws as without it
    assert bool(b["negated"].all())  # every caption here has a flipped relation or swapped colours
    assert b["negative_tokens"].shape != b["tokens"].shape or not torch.equal(b["negative_tokens"], b["tokens"])
    model = contrast.component.model
    errors = plain.diffusion.loss(lambda x, t: model(x, t, tokens=a["tokens"], token_mask=a["token_mask"]), a["x0"], generator=torch.Generator().manual_seed(5))
    # a "negative" that is the caption itself denoises exactly as well: the term is τ·e·ln 2 per row
    b["negative_tokens"], b["negative_mask"] = b["tokens"], b["token_mask"]
    same = contrast.loss(model, b, torch.Generator().manual_seed(5))
    expected = errors.mean() + 2.0 * CONTRAST_TEMPERATURE * math.log(2) * errors.sum() / len(errors)
    assert torch.allclose(same, expected, rtol=1e-5)
    b["negated"][:] = False
    assert torch.allclose(contrast.loss(model, b, torch.Generator().manual_seed(5)), errors.mean(), rtol=1e-6)


def test_contrast_negatives_limits_the_hard_negatives_to_some_perturbations(tmp_path) -> None:
    data = _relation_folder(tmp_path / "relations")
    relation = _contrast_stage(data, caption_contrast=1.0, contrast_negatives="relation")
    table = relation.captions
    captions = [table.texts[r] for r in table.rows.tolist()]
    negatives = [table.texts[r] for r in table.negatives[table.rows].flatten().tolist() if r >= 0]
    assert negatives == [c.replace("to the left of", "to the right of") for c in captions]  # one each, no colour swaps
    everything = _contrast_stage(data, caption_contrast=1.0).captions
    assert (everything.negatives[everything.rows] >= 0).sum(1).tolist() == [2, 2, 2, 2]
    with pytest.raises(InputError, match="comma-separated"):
        _contrast_stage(data, caption_contrast=1.0, contrast_negatives="flips")


def test_contrast_rephrased_gives_the_rephrased_captions_negatives_too(tmp_path) -> None:
    data = _relation_folder(tmp_path / "relations")
    options = dict(caption_contrast=1.0, contrast_negatives="relation", caption_augment=1.0)
    canonical, rephrased = _contrast_stage(data, **options), _contrast_stage(data, contrast_rephrased=True, **options)
    a, b = (s.batch(0, 16, torch.Generator().manual_seed(3)) for s in (canonical, rephrased))
    assert torch.equal(a["tokens"], b["tokens"])  # the same draws
    assert not bool(a["negated"].any())  # every caption was rephrased, and a rephrasing had no negative
    assert bool(b["negated"].all())  # now each has its mirror image
    table = rephrased.captions
    pairs = {table.texts[r]: table.texts[n] for r, n in enumerate(table.negatives[:, 0].tolist()) if n >= 0}
    assert pairs["left: one triangle that is green, right: a circle of red color on an empty background!"] == \
        "right: one triangle that is green, left: a circle of red color on an empty background!"
    assert pairs["2 shapes in total: a single triangle in red and, left of it, a single circle of yellow color and no more!"] == \
        "2 shapes in total: a single triangle in red and, right of it, a single circle of yellow color and no more!"
    with pytest.raises(InputError, match="contrast_rephrased"):
        _contrast_stage(data, caption_contrast=1.0, contrast_rephrased=True)


def test_a_step_down_the_caption_contrast_makes_the_negatives_denoise_worse(tmp_path) -> None:
    stage = _contrast_stage(_relation_folder(tmp_path / "relations"), caption_contrast=1.0)
    model, batch = stage.component.model, stage.batch(0, 8, torch.Generator().manual_seed(3))

    def errors(tokens: str, mask: str) -> torch.Tensor:  # on the noisy images the loss draws from seed 5
        return stage.diffusion.loss(lambda x, t: model(x, t, tokens=batch[tokens], token_mask=batch[mask]), batch["x0"], generator=torch.Generator().manual_seed(5))

    def gap() -> float:  # how much worse the negatives denoise than the captions
        with torch.no_grad():
            return float((errors("negative_tokens", "negative_mask") - errors("tokens", "token_mask")).sum())

    before = gap()
    term = stage.loss(model, batch, torch.Generator().manual_seed(5)) - errors("tokens", "token_mask").mean()
    term.backward()  # the contrast term alone
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.sub_(0.05 * p.grad)
    assert gap() > before + 1e-7, (before, gap())
    with pytest.raises(InputError, match="reads text"):
        UNetStage(Component(model=build_model("unet", TINY_UNET), role="unet", settings={}), stage.data, caption_contrast=1.0)


def test_min_step_trains_only_the_noisiest_steps(tmp_path) -> None:
    data = _relation_folder(tmp_path / "relations")
    for min_step, lowest in ((0, 0), (900, 900)):
        stage = _contrast_stage(data, min_step=min_step)
        batch, drawn = stage.batch(0, 8, torch.Generator().manual_seed(3)), []

        def model(x, t, **cond):
            drawn.append(t)
            return stage.component.model(x, t, **cond)

        assert torch.isfinite(stage.loss(model, batch, torch.Generator().manual_seed(5)))
        t = drawn[0]
        assert int(t.min()) >= lowest and len(set(t.tolist())) > 1
        if not min_step:
            assert int(t.min()) < 900  # the plain stage does reach the quieter steps
    with pytest.raises(InputError, match="min_step must be from 0 to 999"):
        _contrast_stage(data, min_step=1000)


def test_a_high_noise_expert_previews_its_layout_and_refuses_to_sample_a_chain(tiny_run, tmp_path) -> None:
    from t2i.pipelines.sampling import sample_unet, text_conditions
    from t2i.train.build import make_trainer, override_section, read_preset

    preset = override_section(read_preset("tiny"), "imagen-base", ["options.min_step=900", "train.steps=2", "train.sample_every=2"])
    trainer = make_trainer("imagen-base", preset, data=str(tiny_run.data), out_dir=tmp_path / "expert", progress=False)
    figures = trainer.train()
    assert trainer.step == 2 and math.isfinite(figures["preview_mse"])  # the preview is its x0 from pure noise, not a chain
    component = trainer.stage.component
    assert component.settings["min_step"] == 900
    enc = trainer.stage.captions.batch(trainer.stage.captions.first_rows(torch.arange(2).numpy()))
    cond, _ = text_conditions(enc.tokens, enc.mask)
    with pytest.raises(InputError, match="steps 900 and up only"):
        sample_unet(component, cond, steps=2)


def test_balanced_groups_draw_each_group_as_often_as_a_single_image() -> None:
    groups = np.array([5, 5, 5, 5, 5, 5, 2, 9])  # an emoji with five skin-tone variants, and two single emoji
    draw = GroupDraw(groups, len(groups))
    share = np.bincount(draw(torch.Generator().manual_seed(0), 30000).numpy(), minlength=8) / 30000
    assert np.allclose(share[6:], 1 / 3, atol=0.015) and np.allclose(share[:6], 1 / 18, atol=0.01)
    assert torch.equal(draw(torch.Generator().manual_seed(4), 64), draw(torch.Generator().manual_seed(4), 64))
    plain = np.bincount(GroupDraw(None, 4)(torch.Generator().manual_seed(0), 20000).numpy()) / 20000
    assert np.allclose(plain, 0.25, atol=0.015)  # no groups: every image its own, drawn uniformly
    # the stage's option draws through it: each image's pixels say which one it is
    images = np.repeat(np.arange(8, dtype=np.uint8)[:, None, None, None] * 30, 16, 1).repeat(16, 2).repeat(3, 3)
    data = ImageCaptionSet(images, [[f"emoji {g}"] for g in groups], groups=groups)
    component = Component(model=_text_unet(), role="unet", settings={"diffusion": {"objective": "v"}})
    stage = UNetStage(component, data, balance_groups=True)
    x0 = stage.batch(0, 3000, torch.Generator().manual_seed(1))["x0"]
    drawn = torch.round((x0[:, 0, 0, 0] + 1) * 127.5 / 30).long()
    assert abs(float((drawn >= 6).float().mean()) - 2 / 3) < 0.03


def test_counting_scenes_reach_the_data_and_only_shapes_has_them(tiny_run) -> None:
    with pytest.raises(InputError, match="counting scenes are shapes scenes"):  # the option is read by the data loader
        _text_stage(tiny_run, counting_scenes=10)
