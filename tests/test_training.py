"""The training loop: exact resumption, checkpoints as components, atomic saves, learning, metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import state_dicts_equal, write_emoji_folder

import t2i.train.trainer as trainer_module
from t2i.checkpoint import CheckpointError, load_component
from t2i.cli import main
from t2i.config import ConfigError
from t2i.eval.emoji import fidelity_at_k
from t2i.models.retrieval import retrieval_scores
from t2i.train.build import make_trainer, override_section, read_preset, resolve_component


def _trainer(stage: str, run, out: Path, **overrides):
    """A tiny-preset trainer on the session's data. make_trainer draws the initial weights from
    torch's global generator (see test_same_seed_same_initial_weights): seed it, so that two runs
    compared below start from the same weights."""
    torch.manual_seed(1234)
    train = {"save_every": 100, "sample_every": 100, **overrides}
    return make_trainer(stage, read_preset("tiny"), data=str(run.data), out_dir=out,
                        needs={"clip": run.run("clip")} if stage in ("prior", "decoder") else None, train_overrides=train, progress=False)


def _raw(trainer):
    return trainer.accelerator.unwrap_model(trainer.model)


# ---------------------------------------------------------------- exact resumption

@pytest.mark.parametrize("stage", ["clip", "prior", "decoder", "upsampler", "imagen-base", "imagen-sr"])
def test_resumed_run_equals_uninterrupted_run(stage, tiny_run, tmp_path) -> None:
    whole = _trainer(stage, tiny_run, tmp_path / "whole", steps=4)
    whole_figures = whole.train()
    assert whole.step == 4

    first = _trainer(stage, tiny_run, tmp_path / "split", steps=4)
    assert first.resume() is False  # nothing to resume yet
    first.train(max_steps=2)  # the "interrupted" run: stops and saves at step 2
    assert first.step == 2 and first.latest_checkpoint().name == "step-00000002"
    assert not state_dicts_equal(_raw(first), _raw(whole))
    del first

    second = _trainer(stage, tiny_run, tmp_path / "split", steps=4)
    assert second.resume() is True and second.step == 2
    second_figures = second.train()
    assert second.step == 4

    assert state_dicts_equal(_raw(second), _raw(whole)), "raw weights differ"
    assert state_dicts_equal(second.ema.model, whole.ema.model), "EMA weights differ"
    assert second_figures["loss"] == whole_figures["loss"]  # the loss of steps 3-4, logged at step 4
    # the optimiser moments too, so training on would stay identical
    a, b = second.optimizer.state_dict()["state"], whole.optimizer.state_dict()["state"]
    assert a.keys() == b.keys() and all(torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"]) for k in a)


def test_cli_train_resume_continues_the_run(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "clip-run"
    base = ["train", "clip", "--data", str(tiny_run.data), "--config", "tiny", "--out", str(out), "--no-progress"]
    torch.manual_seed(1234)  # the same initial weights as _trainer's
    assert main(base + ["--steps", "2"]) == 0
    assert (out / "latest").read_text() == "step-00000002"
    capsys.readouterr()
    # a second run into the same folder must say --resume
    assert main(base + ["--steps", "4"]) == 2
    assert "--resume" in capsys.readouterr().err
    resume = [a for a in base if a not in ("--config", "tiny")]  # the run's record holds its settings
    assert main(base + ["--steps", "4", "--resume"]) == 2
    assert "--config does not apply to --resume" in capsys.readouterr().err
    assert main(resume + ["--steps", "4", "--resume"]) == 0
    out_text = capsys.readouterr().out
    assert f"resumed {out} at step 2" in out_text and "clip: step 4" in out_text
    assert (out / "latest").read_text() == "step-00000004"
    whole = _trainer("clip", tiny_run, tmp_path / "whole", steps=4, save_every=2, sample_every=4)
    whole.train()
    assert state_dicts_equal(load_component(resolve_component(out), role="clip").model, whole.ema.model)


def test_cli_set_changes_one_setting_of_the_run(tiny_run, tmp_path) -> None:
    from t2i.train.build import override_section

    preset = read_preset("tiny")
    changed = override_section(preset, "decoder", ["options.drop_text=0.25", "train.warmup_steps=3", "model.base_channels=8"])
    assert preset == read_preset("tiny")  # the preset itself is untouched
    assert changed["decoder"]["options"]["drop_text"] == 0.25 and changed["decoder"]["model"]["base_channels"] == 8
    out = tmp_path / "dec"
    common = ["train", "decoder", "--data", str(tiny_run.data), "--config", "tiny", "--clip", str(tiny_run.run("clip")),
              "--out", str(out), "--no-progress", "--set", "options.drop_text=0.25", "--set", "train.warmup_steps=3"]
    # a part the warm start lacks (text positions) keeps its fresh initialisation, and says so
    with pytest.warns(UserWarning, match="1 tensor.* not in it keep their fresh initial values: text_pos"):
        assert main([*common, "--set", "model.text_positions=32", "--steps", "1", "--init-from", str(tiny_run.run("decoder"))]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["init_from"] == str(tiny_run.run("decoder"))  # a warm-started run says from what
    assert run["section"]["options"]["drop_text"] == 0.25 and run["train"]["warmup_steps"] == 3
    assert run["section"]["model"]["text_positions"] == 32
    assert run["section"]["options"]["drop_embed"] == preset["decoder"]["options"]["drop_embed"]
    # resuming without --set keeps the run's own settings and the record of its warm start
    resume = [a for a in common[: common.index("--set")] if a not in ("--config", "tiny")]
    assert main([*resume, "--steps", "2", "--resume"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["init_from"] == str(tiny_run.run("decoder"))
    assert run["section"]["options"]["drop_text"] == 0.25 and run["train"]["warmup_steps"] == 3 and run["train"]["steps"] == 2
    info = json.loads((out / "checkpoints" / (out / "latest").read_text() / "config.json").read_text())["info"]
    assert info["step"] == 2 and info["run"]["init_from"] == str(tiny_run.run("decoder"))


def test_match_only_training_trains_the_head_and_leaves_both_towers_as_they_were(tiny_run, tmp_path, capsys) -> None:
    out, start = tmp_path / "match", tiny_run.run("clip")
    common = ["train", "clip", "--data", str(tiny_run.data), "--config", "tiny", "--init-from", str(start), "--no-progress", "--steps", "4"]
    with pytest.warns(UserWarning, match="fresh initial values: match_"):
        assert main([*common, "--out", str(out), "--set", "model.match_depth=2", "--set", "options.match_only=true"]) == 0
    trained, before = load_component(resolve_component(out), role="clip").model, load_component(resolve_component(start), role="clip").model
    assert trained.has_match_head
    ours, theirs = {k: v for k, v in trained.state_dict().items() if not k.startswith("match_")}, before.state_dict()
    # the embedding space a prior and decoder use is untouched
    assert ours.keys() == theirs.keys() and all(torch.equal(v, theirs[k]) for k, v in ours.items())
    # the loss is the head's binary one (ln 2 at chance), not the contrastive one (ln 8 for a batch of 8)
    first = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert 0.4 < first["loss"] < 1.0
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "no-head"), "--set", "options.match_only=true"]) == 2
    assert "match_only needs a CLIP with a matching head" in capsys.readouterr().err


def test_embedding_noise_keeps_unit_length_and_the_expected_cosine() -> None:
    from t2i.train.stages import noised_embeddings

    e = torch.nn.functional.normalize(torch.randn(4000, 128, generator=torch.Generator().manual_seed(0)), dim=-1)
    z = noised_embeddings(e, 0.6, torch.Generator().manual_seed(1))
    assert torch.allclose(z.norm(dim=-1), torch.ones(len(z)), atol=1e-5)
    cos = (z * e).sum(-1)
    sigma = torch.linspace(0, 0.6, 10001)
    assert abs(cos.mean().item() - (1 / (1 + sigma**2).sqrt()).mean().item()) < 0.005  # E over sigma ~ U[0, 0.6]
    assert cos.min().item() > 0.75  # sigma <= 0.6: cos >= 1/sqrt(1.36) = 0.857, less a little for |n| > 1
    assert torch.equal(z, noised_embeddings(e, 0.6, torch.Generator().manual_seed(1)))


def test_decoder_embed_noise_perturbs_only_when_set(tiny_run, tmp_path) -> None:
    from t2i.train.build import override_section

    plain = make_trainer("decoder", read_preset("tiny"), data=str(tiny_run.data), out_dir=tmp_path / "a", needs={"clip": tiny_run.run("clip")}, progress=False)
    noisy = make_trainer("decoder", override_section(read_preset("tiny"), "decoder", ["options.embed_noise=0.5"]), data=str(tiny_run.data),
                         out_dir=tmp_path / "b", needs={"clip": tiny_run.run("clip")}, progress=False)
    a = plain.stage.batch(0, 8, torch.Generator().manual_seed(3))
    b = noisy.stage.batch(0, 8, torch.Generator().manual_seed(3))
    assert torch.equal(a["x0"], b["x0"])  # the same images
    clean = plain.stage.embeds
    assert any(torch.equal(a["embed"][0], row) for row in clean)  # without the option: the images' own embeddings
    cos = (a["embed"] * b["embed"]).sum(-1)
    assert cos.mean() < 0.99 and (cos > 0.7).all()


def test_same_seed_same_initial_weights(tiny_run, tmp_path) -> None:
    """Two runs with one seed start from one model, whatever ran before in the process."""
    preset = read_preset("tiny")
    a = make_trainer("prior", preset, data=str(tiny_run.data), out_dir=tmp_path / "a", needs={"clip": tiny_run.run("clip")}, progress=False)
    torch.rand(3)  # anything else that used the global generator in between
    b = make_trainer("prior", preset, data=str(tiny_run.data), out_dir=tmp_path / "b", needs={"clip": tiny_run.run("clip")}, progress=False)
    assert state_dicts_equal(_raw(a), _raw(b))
    c = make_trainer("prior", preset, data=str(tiny_run.data), out_dir=tmp_path / "c", needs={"clip": tiny_run.run("clip")}, train_overrides={"seed": 1}, progress=False)
    assert not state_dicts_equal(_raw(a), _raw(c))


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_folder_is_a_loadable_component(tiny_run, tmp_path) -> None:
    trainer = _trainer("decoder", tiny_run, tmp_path / "run", steps=6, save_every=2)
    trainer.train()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step-00000004", "step-00000006"]  # keep_checkpoints = 2: older ones pruned
    latest = trainer.latest_checkpoint()
    assert latest == tmp_path / "run" / "checkpoints" / "step-00000006"
    assert resolve_component(tmp_path / "run") == latest
    comp = load_component(latest, role="decoder")
    assert comp.role == "decoder" and comp.info["step"] == 6
    assert comp.settings["diffusion"]["objective"] == "v"  # as the tiny preset says
    assert state_dicts_equal(comp.model, trainer.ema.model)  # the EMA weights are what inference uses
    assert not state_dicts_equal(comp.model, _raw(trainer))
    assert not comp.model.training
    with pytest.raises(CheckpointError, match="decoder checkpoint, expected a prior"):
        load_component(latest, role="prior")
    state = json.loads((latest / "state.json").read_text())
    assert state["step"] == 6 and state["train"]["steps"] == 6


def _crashing(real):
    def write_then_crash(folder, component, **kw):
        real(folder, component, **kw)  # model.safetensors and config.json written...
        raise OSError(28, "No space left on device")  # ...then the disk fills up

    return write_then_crash


def test_crash_while_saving_keeps_the_previous_checkpoint(tiny_run, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    trainer = _trainer("prior", tiny_run, out, steps=4, save_every=2)
    trainer.train(max_steps=2)
    saved = {k: v.clone() for k, v in trainer.ema.model.state_dict().items()}
    before = {p.relative_to(out): p.read_bytes() for p in (out / "checkpoints").rglob("*") if p.is_file()}

    monkeypatch.setattr(trainer_module, "write_component_files", _crashing(trainer_module.write_component_files))
    with pytest.raises(OSError, match="No space"):
        trainer.train()  # steps 3 and 4, then the save at step 4 fails
    assert trainer.step == 4
    monkeypatch.undo()

    assert (out / "latest").read_text() == "step-00000002"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000002"]  # no half-written step-4
    after = {p.relative_to(out): p.read_bytes() for p in (out / "checkpoints").rglob("*") if p.is_file()}
    assert after == before
    comp = load_component(resolve_component(out), role="prior")
    assert all(torch.equal(comp.model.state_dict()[k], v) for k, v in saved.items())
    fresh = _trainer("prior", tiny_run, out, steps=4, save_every=2)
    assert fresh.resume() and fresh.step == 2


def test_crash_before_the_pointer_moves_keeps_the_previous_checkpoint(tiny_run, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    trainer = _trainer("prior", tiny_run, out, steps=4, save_every=2)
    trainer.train(max_steps=2)

    def no_rename(self, target):
        raise KeyboardInterrupt  # killed between writing step-4 and moving `latest`

    monkeypatch.setattr(Path, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    monkeypatch.undo()
    assert (out / "latest").read_text() == "step-00000002"
    fresh = _trainer("prior", tiny_run, out, steps=4, save_every=2)
    assert fresh.resume() and fresh.step == 2
    load_component(fresh.latest_checkpoint(), role="prior")


def test_resume_ignores_a_pointer_to_a_missing_checkpoint(tiny_run, tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "latest").write_text("step-00000099")
    trainer = _trainer("prior", tiny_run, out, steps=2)
    assert trainer.latest_checkpoint() is None and trainer.resume() is False and trainer.step == 0


# ---------------------------------------------------------------- learning

def test_decoder_loss_decreases_when_overfitting_two_images(tiny_run, tmp_path) -> None:
    data = tmp_path / "two"
    write_emoji_folder(data, indices=(0, 150))
    steps = 30
    torch.manual_seed(0)
    preset = read_preset("tiny")
    preset["decoder"]["diffusion"]["objective"] = "eps"  # the bounds below were measured with eps
    trainer = make_trainer("decoder", preset, data=str(data), out_dir=tmp_path / "run", needs={"clip": tiny_run.run("clip")},
                           train_overrides={"steps": steps, "lr": 3e-3, "log_every": 1, "save_every": steps, "sample_every": steps, "batch_size": 4},
                           progress=False)
    # a fixed evaluation batch (64 draws of image, caption, timestep and noise): a low-variance loss
    batch = trainer.stage.batch(0, 64, torch.Generator().manual_seed(99))

    def fixed_loss(model) -> float:
        with torch.no_grad():
            return float(trainer.stage.loss(model, batch, torch.Generator().manual_seed(7)))

    before = fixed_loss(_raw(trainer))
    trainer.train()
    assert fixed_loss(_raw(trainer)) < 0.7 * before  # measured: about 0.54 x
    assert fixed_loss(trainer.ema.model) < 0.75 * before
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == steps and all(np.isfinite(losses))
    # the logged training loss (one random timestep per image: noisy) falls as well
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])


# ---------------------------------------------------------------- metrics

def test_retrieval_scores_perfect_and_shuffled() -> None:
    g = torch.Generator().manual_seed(0)
    n = 64
    image = torch.nn.functional.normalize(torch.randn(n, 16, generator=g), dim=-1)
    texts = [f"caption {i}" for i in range(n)]
    perfect = retrieval_scores(image, image.clone(), texts)
    assert perfect == {f"{d}_top{k}": 1.0 for d in ("image_to_text", "text_to_image") for k in (1, 5)}

    perm = torch.roll(torch.arange(n), 1)  # every text belongs to another image
    shuffled = retrieval_scores(image, image[perm], texts)
    assert shuffled["image_to_text_top1"] == 0.0 and shuffled["text_to_image_top1"] == 0.0
    assert shuffled["image_to_text_top5"] < 0.25 and shuffled["text_to_image_top5"] < 0.25

    # a shared caption: retrieving either image of "caption 0" is right
    shared = ["caption 0", "caption 0"] + texts[2:]
    scores = retrieval_scores(image, image[torch.tensor([1, 0, *range(2, n)])], shared)
    assert scores["image_to_text_top1"] == 1.0 and scores["text_to_image_top1"] == 1.0
    with pytest.raises(ValueError):
        retrieval_scores(image, image[:-1], texts)


def test_fidelity_at_k_on_the_reference_itself_is_one() -> None:
    from t2i.data.emoji import load_emoji

    emoji = load_emoji(64, "all")
    ref, groups = emoji.images[:400], emoji.groups[:400]
    assert fidelity_at_k(ref, groups, ref, groups) == 1.0
    assert fidelity_at_k(ref[::7], groups[::7], ref, groups, k=1) == 1.0
    # wrong targets: another emoji's group is rarely among the 5 nearest
    wrong = np.roll(groups, 37)
    assert (wrong != groups).mean() > 0.9
    assert fidelity_at_k(ref, wrong, ref, groups) < 0.2
    # random noise images with random targets
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(50, 64, 64, 3), dtype=np.uint8)
    assert fidelity_at_k(noise, rng.choice(groups, 50), ref, groups) < 0.3


def test_a_resumed_run_logs_each_step_once_and_clears_a_killed_save(tiny_run, tmp_path) -> None:
    """A run killed after its step-2 checkpoint had logged steps 3 and 4 and left half a step-4
    folder; resumed, it redoes steps 3-4, and its log holds each step once, the litter gone."""
    first = _trainer("upsampler", tiny_run, tmp_path / "run", steps=6, log_every=1, save_every=2)
    first.train(max_steps=4)  # checkpoints at 2 and 4; "killed" after step 4's log line ...
    (tmp_path / "run" / "latest").write_text("step-00000002")  # ... before step 4's pointer moved
    litter = tmp_path / "run" / "checkpoints" / ".step-00000004.tmp-dead"
    litter.mkdir()
    (litter / "model.safetensors").write_bytes(b"half")
    second = _trainer("upsampler", tiny_run, tmp_path / "run", steps=6, log_every=1, save_every=2)
    assert second.resume() and second.step == 2
    second.train()
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert not litter.exists()


def test_resume_passes_over_a_damaged_checkpoint_to_the_newest_intact_one(tiny_run, tmp_path) -> None:
    whole = _trainer("upsampler", tiny_run, tmp_path / "whole", steps=4)
    whole.train()
    first = _trainer("upsampler", tiny_run, tmp_path / "split", steps=4, save_every=1)
    first.train(max_steps=3)  # checkpoints at steps 2 and 3 are kept
    state = json.loads((tmp_path / "split" / "checkpoints" / "step-00000003" / "state.json").read_text())
    assert set(state["sha256"]) == {"config.json", "model.safetensors", "raw.safetensors", "optimizer.pt"}
    damaged = tmp_path / "split" / "checkpoints" / "step-00000003" / "raw.safetensors"
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the weights: still loadable, silently wrong without a checksum
    damaged.write_bytes(bytes(data))
    second = _trainer("upsampler", tiny_run, tmp_path / "split", steps=4)
    with pytest.warns(UserWarning, match=r"step-00000003 is damaged \(raw.safetensors does not match its checksum\)"):
        assert second.resume() is True
    assert second.step == 2 and (tmp_path / "split" / "checkpoints" / "damaged-step-00000003").is_dir()
    second.train()
    assert state_dicts_equal(_raw(second), _raw(whole)) and state_dicts_equal(second.ema.model, whole.ema.model)
    for step in ("step-00000002", "step-00000004"):
        (tmp_path / "split" / "checkpoints" / step / "model.safetensors").write_bytes(b"not weights")
    third = _trainer("upsampler", tiny_run, tmp_path / "split", steps=4)
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="every checkpoint is damaged"):
        third.resume()


def test_a_text_consistency_fine_tune_resumes_exactly_toward_the_model_it_started_from(tiny_run, tmp_path) -> None:
    preset = override_section(read_preset("tiny"), "decoder", ["options.text_consistency=1.0", "options.caption_augment=0.5"])

    def trainer(out: Path, init_from=None):
        torch.manual_seed(1234)
        return make_trainer("decoder", preset, data=str(tiny_run.data), out_dir=out, needs={"clip": tiny_run.run("clip")}, init_from=init_from,
                            train_overrides={"steps": 4, "save_every": 100, "sample_every": 100}, progress=False)

    start = tiny_run.run("decoder")
    whole = trainer(tmp_path / "whole", start)
    whole.train()
    first = trainer(tmp_path / "split", start)
    first.train(max_steps=2)
    del first
    second = trainer(tmp_path / "split")  # --resume: no --init-from; the pull's target is the run's recorded start
    assert state_dicts_equal(second.stage.teacher, whole.stage.teacher)
    assert second.resume() is True
    second.train()
    assert state_dicts_equal(_raw(second), _raw(whole)) and not state_dicts_equal(_raw(second), second.stage.teacher)
    with pytest.raises(ConfigError, match="--init-from"):
        trainer(tmp_path / "fresh")


def test_a_text_only_clip_run_resumes_exactly_over_its_frozen_image_tower(tiny_run, tmp_path) -> None:
    # the frozen tower's embeddings are taken once: from the checkpoint's weights on a resume,
    # not from the fresh ones a resumed trainer is built with
    preset, start = override_section(read_preset("tiny"), "clip", ["options.text_only=true"]), tiny_run.run("clip")

    def trainer(out: Path, init_from=start):
        torch.manual_seed(1234)
        return make_trainer("clip", preset, data=str(tiny_run.data), out_dir=out, init_from=init_from,
                            train_overrides={"steps": 4, "save_every": 100, "sample_every": 100}, progress=False)

    whole = trainer(tmp_path / "whole")
    whole_figures = whole.train()
    first = trainer(tmp_path / "split")
    first.train(max_steps=2)
    del first
    second = trainer(tmp_path / "split", init_from=None)  # as --resume: the weights come from the checkpoint
    assert second.resume() is True
    second_figures = second.train()
    assert state_dicts_equal(_raw(second), _raw(whole)) and state_dicts_equal(second.ema.model, whole.ema.model)
    assert second_figures["loss"] == whole_figures["loss"]


def test_a_fine_tune_of_some_weights_leaves_the_rest_alone_and_resumes_exactly(tiny_imagen, tmp_path) -> None:
    preset = override_section(read_preset("tiny"), "imagen-base", ["options.train_only=attn"])

    def trainer(out: Path, init_from=tiny_imagen.runs["imagen-base"]):  # a fresh UNet's zero output layer, frozen, would pass no gradient
        torch.manual_seed(1234)
        return make_trainer("imagen-base", preset, data=str(tiny_imagen.data), out_dir=out, init_from=init_from,
                            train_overrides={"steps": 4, "save_every": 100, "sample_every": 100}, progress=False)

    whole = trainer(tmp_path / "whole")
    before = {k: v.clone() for k, v in _raw(whole).state_dict().items()}
    whole.train()
    after = _raw(whole).state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved and all("attn" in k for k in moved)
    assert all(torch.equal(whole.ema.model.state_dict()[k], before[k]) for k in before if "attn" not in k)
    first = trainer(tmp_path / "split")
    first.train(max_steps=2)
    del first
    second = trainer(tmp_path / "split", init_from=None)  # as --resume: the weights come from the checkpoint
    assert second.resume() is True
    second.train()
    assert state_dicts_equal(_raw(second), _raw(whole)) and state_dicts_equal(second.ema.model, whole.ema.model)
