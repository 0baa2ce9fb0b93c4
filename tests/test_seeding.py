"""An image's noise depends on (seed, prompt index, sample index), never on how the work is batched."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from t2i.cli import main
from t2i.diffusion.noise import RowGenerators, randn, row_seed
from t2i.pipelines.loading import load_pipeline

FAST = dict(prior_steps=2, decoder_steps=2, upsampler_steps=1)


def same_picture(a, b) -> bool:
    """Equal up to float rounding: a batch pads its captions to its longest, and batched kernels
    round differently, which moves a few pixels by one level (other noise would move them all)."""
    d = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
    return d.max() <= 2 and d.mean() < 0.02


def test_row_seeds_are_stable_and_rows_independent() -> None:
    assert row_seed(0, 1, 2) == row_seed(0, 1, 2) != row_seed(0, 2, 1)
    assert 0 <= row_seed("x") < 2**63
    rows = RowGenerators.for_images(7, num_prompts=3, num_images=2)
    alone = RowGenerators.for_images(7, num_prompts=1, num_images=2, first_prompt=2)
    assert torch.equal(randn((6, 4), rows)[4:], randn((2, 4), alone))  # the last prompt's rows, drawn with or without the others
    assert len(rows.repeat(3, "candidates")) == 18 and len(set(rows.repeat(3, "candidates").seeds)) == 18
    plain = torch.Generator().manual_seed(5)
    assert torch.equal(randn((2, 3), plain), torch.randn((2, 3), generator=torch.Generator().manual_seed(5)))  # one generator: as before


def test_the_same_images_in_one_call_or_prompt_by_prompt(tiny_run) -> None:
    pipe = load_pipeline(tiny_run.pipeline)
    prompts = ["a red apple", "grinning face", "a cat"]
    for options in (FAST, dict(FAST, prior_candidates=2, decoder_candidates=2)):
        together = pipe(prompts, num_images=2, seed=11, **options)
        apart = [im for i, p in enumerate(prompts) for im in pipe([p], num_images=2, seed=11, first_index=i, **options)]
        assert all(same_picture(a, b) for a, b in zip(together, apart))
        assert not same_picture(together[0], together[1])  # two samples of one prompt differ


def test_generate_from_a_file_gives_the_same_images_at_any_batch_size(tiny_run, tmp_path) -> None:
    # it did not: each batch drew its noise from one generator seeded with --seed + its first line
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red apple\ngrinning face\na cat\n")
    outs = {}
    for batch in (1, 4):
        out = tmp_path / f"batch-{batch}"
        assert main(["generate", "--model", str(tiny_run.pipeline), "--prompts-file", str(prompts), "--out-dir", str(out), "-n", "2",
                     "--batch-size", str(batch), "--seed", "3", "--prior-steps", "2", "--decoder-steps", "2", "--upsampler-steps", "1"]) == 0
        outs[batch] = {p.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))}
    assert sorted(outs[1]) == sorted(outs[4]) and len(outs[1]) == 6
    assert all(same_picture(outs[1][name], outs[4][name]) for name in outs[1])
    assert not same_picture(outs[1]["0000_00.png"], outs[1]["0000_01.png"])


def test_generate_batches_a_list_as_one_call(tiny_run) -> None:
    pipe = load_pipeline(tiny_run.pipeline)
    prompts = ["a red apple", "grinning face", "a cat"]
    embeds = torch.nn.functional.normalize(torch.randn(6, pipe.clip.model.config.embed_dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    one_call = pipe(prompts, num_images=2, seed=4, image_embedding=embeds, **FAST)
    batched = list(pipe.generate(prompts, num_images=2, seed=4, batch_size=2, per_image={"image_embedding": embeds}, **FAST))
    assert [(line, sample) for line, sample, _ in batched] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert all(same_picture(a, image) for a, (_, _, image) in zip(one_call, batched))
