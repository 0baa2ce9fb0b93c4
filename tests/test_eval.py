"""The evaluation commands run end to end on the tiny pipeline, and their scoring is exact."""
import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from t2i.cli import main
from t2i.data.dataset import to_uint8
from t2i.data.emoji import load_emoji
from t2i.data.shapes import render_scene
from t2i.data.shapes_eval import canonical_prompts, scene_for_prompt, score_image
from t2i.diffusion.noise import RowGenerators
from t2i.eval.common import real_images
from t2i.eval.emoji import emoji_benchmark
from t2i.eval.shapes import shapes_benchmark
from t2i.pipelines.loading import load_pipeline


class RenderTruth:
    """A stand-in "model" that draws the ground truth: the benchmark must then score 1.0."""

    def __call__(self, prompts, *, num_images, seed, **options):
        from PIL import Image

        rng = np.random.default_rng(seed)
        return [Image.fromarray(render_scene(scene_for_prompt(p, rng, 64), 64)) for p in prompts for _ in range(num_images)]


class RealEmoji:
    """The tiny pipeline's CLIP and text encoder, but "generating" the dataset image of each caption."""

    def __init__(self, pipe):
        self.pipe, self.clip = pipe, pipe.clip
        everything = load_emoji(64, "all")
        self.by_caption = {caps[0]: image for caps, image in zip(everything.captions, everything.images)}

    def encode_text(self, prompts):
        return self.pipe.encode_text(prompts)

    def __call__(self, prompts, *, num_images, seed, **options):
        from PIL import Image

        return [Image.fromarray(self.by_caption[p]) for p in prompts for _ in range(num_images)]


def test_shapes_benchmark_scores_ground_truth_as_perfect(tmp_path):
    result = shapes_benchmark(RenderTruth(), samples=2, limit=3, batch_size=8, out_dir=tmp_path)
    summary = result["summary"]
    assert summary["overall"] == 1.0 and summary["held_out"] == 1.0
    assert len(result["images"]) == 2 * len(canonical_prompts(per_task=3))
    assert result["counts"]["single_object"] == 6 and result["counts"]["held_out"] == 12
    assert json.loads((tmp_path / "shapes.json").read_text())["summary"] == summary
    table = (tmp_path / "shapes.md").read_text()
    assert "| single_object |" in table and "| 1.000 |" in table
    assert not (tmp_path / "shapes-failures.png").exists()  # nothing failed
    assert (tmp_path / "shapes-counting.png").is_file() and (tmp_path / "shapes-held_out.png").is_file()


def test_emoji_benchmark_of_the_real_images_reaches_the_references(tiny_run, tmp_path):
    """Generated = real: fidelity@5 is 1 and CLIP score and R-precision equal their real-image references."""
    result = emoji_benchmark(RealEmoji(load_pipeline(tiny_run.pipeline)), samples=1, limit=6, out_dir=tmp_path)
    for split in ("train", "heldout"):
        f = result["summary"][split]
        assert f["fidelity@5"] == f["fidelity@5_real"] == 1.0 and f["captions"] == 6 and f["images"] == 6
        assert f["clip_score"] == pytest.approx(f["clip_score_real"], abs=1e-6)
        assert f["r_precision"] == f["r_precision_real"]
        assert f["fd_pixel16_real_halves"] < f["fd_pixel16"]  # 6 base emoji against the whole split
    assert "train (real images)" in (tmp_path / "emoji.md").read_text()
    assert list(tmp_path.glob("emoji-train-*.png")) and list(tmp_path.glob("emoji-heldout-*.png"))


def test_eval_commands_run_on_a_trained_pipeline(tiny_run, tmp_path, capsys):
    pipe = load_pipeline(tiny_run.pipeline)
    emoji = emoji_benchmark(pipe, samples=1, limit=3, batch_size=4, splits=("train",))
    f = emoji["summary"]["train"]
    assert f["captions"] == 3 and 0.0 <= f["fidelity@5"] <= 1.0 and f["fd_pixel16"] > f["fd_pixel16_real_halves"]
    code = main(["eval", "shapes", "--model", str(tiny_run.pipeline), "--samples", "1", "--limit", "1", "-o", str(tmp_path)])
    assert code == 0
    summary = json.loads((tmp_path / "shapes.json").read_text())["summary"]
    assert set(summary) >= {"overall", "held_out", "single_object", "attribute_binding"}
    rows = json.loads((tmp_path / "shapes.json").read_text())["images"]
    assert (tmp_path / "shapes-failures.png").is_file() == (not all(r["passed"] for r in rows))


def test_ablation_real_images_are_true_images_of_their_prompts():
    prompts = [p.prompt for p in canonical_prompts(per_task=4)]
    shapes = real_images("shapes", prompts, 2, 0, 64)
    assert len(shapes) == 2 * len(prompts)
    assert all(score_image(im, prompts[i // 2]).passed for i, im in enumerate(shapes))
    assert not np.array_equal(shapes[0], shapes[1])  # a new scene per sample
    everything = load_emoji(64, "all")
    emoji = real_images("emoji", ["red apple", "rocket"], 1, 0, 64)
    assert [caps for caps, im in zip(everything.captions, everything.images) if np.array_equal(im, emoji[1])][0].count("rocket") == 1
    with pytest.raises(ValueError, match="no emoji is captioned 'not an emoji'"):
        real_images("emoji", ["not an emoji"], 1, 0, 32)


def test_given_image_embeddings_skip_the_prior(tiny_run):
    import torch

    pipe = load_pipeline(tiny_run.pipeline)
    embeds = torch.randn(4, pipe.clip.model.config.embed_dim, generator=torch.Generator().manual_seed(0))
    images = pipe(["a red circle", "two squares"], num_images=2, seed=3, image_embedding=embeds)
    enc, _ = pipe.encode_text(["a red circle", "a red circle", "two squares", "two squares"])
    rows = RowGenerators.for_images(3, num_prompts=2, num_images=2)  # per-image noise (t2i.diffusion.noise)
    expected = pipe.decode(torch.nn.functional.normalize(embeds, dim=-1), enc, options=pipe.defaults, generator=rows)
    assert np.array_equal(np.stack([np.asarray(im) for im in images]), to_uint8(expected))
    with pytest.raises(ValueError, match=r"shape \(4, "):
        pipe(["a red circle", "two squares"], num_images=2, image_embedding=embeds[:3])


def test_decoder_candidates_keep_the_image_clip_ranks_first(tiny_run):
    import torch

    from t2i.pipelines.sampling import run_decoder, run_upsampler

    pipe = load_pipeline(tiny_run.pipeline)
    prompts, k = ["a red circle", "two squares"], 3
    embeds = torch.nn.functional.normalize(torch.randn(2, pipe.clip.model.config.embed_dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    images = pipe(prompts, seed=5, image_embedding=embeds, decoder_candidates=k)
    # by hand: k decoder samples per embedding, CLIP's pick against the caption, then the upsampler
    enc, text = pipe.encode_text(prompts)
    o, g = pipe.defaults, RowGenerators.for_images(5, num_prompts=2, num_images=1)  # per-image noise; each candidate its own
    rep = lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
    x = run_decoder(pipe.decoder, rep(embeds), rep(enc.tokens), rep(enc.mask), steps=o.decoder_steps, guidance=o.decoder_guidance, sampler=o.sampler, threshold=o.threshold,
                    generator=g.repeat(k, "decoder candidates"))
    scores = (pipe.clip.model.encode_image(x).view(2, k, -1) * text[:, None]).sum(-1)
    best = x.view(2, k, *x.shape[1:])[torch.arange(2), scores.argmax(1)]
    for up in pipe.upsamplers:
        best = run_upsampler(up, best, steps=o.upsampler_steps, sampler=o.sampler, generator=g)
    assert np.array_equal(np.stack([np.asarray(im) for im in images]), to_uint8(best))
    assert scores.argmax(1).tolist() == [2, 1]  # not always the first candidate: the pick is tested (values of the per-image noise)


def test_decoder_candidates_ranked_by_clips_matching_head_when_it_has_one(tiny_run):
    import dataclasses

    import torch

    from t2i.checkpoint import Component
    from t2i.models.clip import CLIP
    from t2i.pipelines.sampling import run_decoder
    from t2i.unclip.pipeline import UnclipPipeline

    plain = load_pipeline(tiny_run.pipeline)
    torch.manual_seed(0)
    clip = CLIP(dataclasses.replace(plain.clip.model.config, match_depth=1))
    assert clip.load_state_dict(plain.clip.model.state_dict(), strict=False).missing_keys  # the head alone is new
    with torch.no_grad():
        clip.match_out.weight.mul_(100)  # an untrained head's logits barely vary: make its vote count
    pipe = UnclipPipeline(clip=Component(model=clip.eval(), role="clip"), prior=plain.prior, decoder=plain.decoder, defaults=plain.defaults)
    prompts, k = ["a red circle", "two squares"], 4
    embeds = torch.nn.functional.normalize(torch.randn(2, clip.config.embed_dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    images = pipe(prompts, seed=5, image_embedding=embeds, decoder_candidates=k)
    # by hand: k decoder samples per embedding, picked by head logit + CLIP logit for the caption
    enc, text = pipe.encode_text(prompts)
    o, rep = pipe.defaults, lambda x: x.repeat_interleave(k, dim=0)  # noqa: E731
    x = run_decoder(pipe.decoder, rep(embeds), rep(enc.tokens), rep(enc.mask), steps=o.decoder_steps, guidance=o.decoder_guidance, sampler=o.sampler,
                    threshold=o.threshold, generator=RowGenerators.for_images(5, num_prompts=2, num_images=1).repeat(k, "decoder candidates"))
    with torch.no_grad():
        scores = clip.match_logits(x, rep(enc.tokens), rep(enc.mask)).view(2, k)
        cosines = (clip.encode_image(x).view(2, k, -1) * text[:, None]).sum(-1)
    combined = scores + clip.scale.detach() * cosines  # BLIP's ITM + ITC
    best = x.view(2, k, *x.shape[1:])[torch.arange(2), combined.argmax(1)]
    assert np.array_equal(np.stack([np.asarray(im) for im in images]), to_uint8(best))
    assert combined.argmax(1).tolist() != cosines.argmax(1).tolist()  # the head took part in the pick


def test_sweep_writes_one_row_per_value_and_a_plot(tiny_run, tmp_path, capsys):
    model = str(tiny_run.pipeline)
    assert main(["eval", "sweep", "--model", model, "--data", "shapes", "--param", "decoder-guidance", "--values", "1", "4",
                 "--samples", "1", "--limit", "1", "-o", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "sweep-decoder-guidance.json").read_text())
    assert [r["decoder_guidance"] for r in result["rows"]] == [1.0, 4.0]
    assert all(set(r) >= {"overall", "held_out", "clip_score"} for r in result["rows"])
    assert (tmp_path / "sweep-decoder-guidance.png").stat().st_size > 1000
    assert main(["eval", "sweep", "--model", model, "--data", "emoji", "--param", "steps", "--values", "2", "3",
                 "--samples", "1", "--limit", "2", "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "sweep-steps.json").read_text())["rows"]
    assert [(r["sampler"], r["decoder_steps"], r["prior_steps"]) for r in rows] == [("ddim", 2, 2), ("ddim", 3, 3), ("ddpm", 2, 2), ("ddpm", 3, 3)]
    assert (tmp_path / "sweep-steps.png").is_file()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_report_is_valid_html_whose_images_resolve_and_compare_reads_two(tiny_run, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    base = ["eval", "report", "--model", str(tiny_run.pipeline), "--data", "shapes", "--samples", "1", "--limit", "1", "--sweep-values", "1", "2"]
    assert main([*base, "-o", str(a)]) == 0
    assert main([*base, "--decoder-guidance", "2", "-o", str(b)]) == 0
    page = (a / "index.html").read_text()
    parser = _Links()
    parser.feed(page)
    parser.close()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert {"html", "head", "body", "table", "img", "pre"} <= set(parser.tags)
    assert len(parser.images) >= 5 and all((a / src).is_file() for src in parser.images)
    assert "--sweep-values 1 2" in page  # the command that made it
    report = json.loads((a / "report.json").read_text())
    assert [r[""] for r in report["tables"]["ablation"]] == ["caption only", "text embedding", "prior (unCLIP)", "real image embedding"]
    assert len(report["tables"]["sweep"]) == 2 and "decoder" in report["config"]["stages"]
    capsys.readouterr()
    assert main(["eval", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "ablation / prior (unCLIP) / overall" in out and "B - A" in out


def test_the_judge_is_the_shipped_clip_of_the_data_not_the_model_under_test(tiny_run):
    from t2i.checkpoint import CheckpointError
    from t2i.eval.judge import Judge, default_judge

    judge, shipped = default_judge("emoji"), load_pipeline("emoji")
    assert judge.name == "emoji" and judge.clip.model is not load_pipeline(tiny_run.pipeline).clip.model
    prompts = ["a red apple", "grinning face"]
    assert torch.allclose(judge.embed_texts(prompts), shipped.encode_text(prompts)[1], atol=1e-5)  # the same CLIP scores every model
    with pytest.raises(CheckpointError, match="no judge 'nothing-here'"):
        Judge.load("nothing-here")


def test_patch_fd_and_high_frequency_energy_see_what_resizing_loses() -> None:
    from t2i.data.dataset import resize_uint8
    from t2i.eval.metrics import frechet_distance, high_frequency_energy, patch_features

    rng = np.random.default_rng(0)
    sharp = np.repeat(np.repeat(rng.integers(0, 2, (16, 16, 16, 1)) * 255, 4, axis=1), 4, axis=2).repeat(3, axis=3).astype(np.uint8)  # 4x4 blocks
    smooth = resize_uint8(sharp[:, ::4, ::4], 64)  # the same blocks from 16x16, bicubic
    assert patch_features(sharp).shape == (16 * 64, 192)
    assert high_frequency_energy(np.full((2, 8, 8, 3), 128, np.uint8)) == 0.0
    assert high_frequency_energy(smooth) < 0.5 * high_frequency_energy(sharp)
    assert frechet_distance(patch_features(sharp), patch_features(sharp)) < 1e-3 < frechet_distance(patch_features(smooth), patch_features(sharp))
