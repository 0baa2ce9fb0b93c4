"""How much does a shapes model's caption lower its x0 error? A held-out loss for comparing runs.

    python scripts/probe_text_gain.py PIPELINE [PIPELINE ...] [--scenes 512]

For fresh shapes scenes (a seed no training set uses) with one true caption each, the first
stage (Imagen's base, or unCLIP's decoder given the scene's CLIP image embedding) predicts x0 from
the same noised images twice: with the caption and with none. Printed per noise level and
averaged over them: the x0-MSE with the caption, without it, and the difference, the text gain.
The x0 predictions are clipped to [-1, 1], as the samplers' static thresholding does (an
ε-model's raw x0 at t = 999 divides by a signal level near 0). The x0 error is then the same
quantity whatever the model's objective (ε, x0 or v), so runs trained
with different objectives or text encoders compare on one scale, far more precisely than a
sampled benchmark at the same cost: the benchmark's ±0.05 overall needs ~140 images; this
averages 512 scenes × 5 noise levels.
"""
import argparse

import torch
from probe_decoder_relations import encoding  # scripts/ is on the path when a script runs

import t2i
from t2i.data.dataset import to_model_range
from t2i.data.shapes import make_training_set
from t2i.pipelines.sampling import clip_image_embeds, diffusion_of

LEVELS = (999, 900, 700, 500, 300)
PROBE_SEED = 987_654  # scenes no preset trains on


def text_gain(pipe, scenes: int, batch: int = 128) -> dict[int, tuple[float, float]]:
    """{t: (x0-MSE with the caption, without it)} over `scenes` fresh scenes."""
    first = getattr(pipe, "decoder", None) or pipe.base
    size = first.model.config.image_size
    data = make_training_set(scenes, size, seed=PROBE_SEED)
    captions = [pair[0] for pair in data.captions]
    diffusion = diffusion_of(first)
    denoise = diffusion.denoiser(first.model)
    sums = {t: [0.0, 0.0] for t in LEVELS}
    for lo in range(0, scenes, batch):
        x0 = to_model_range(data.images[lo:lo + batch])
        with torch.no_grad():
            tokens = encoding(pipe, captions[lo:lo + batch])
            image = {}
            if hasattr(pipe, "decoder"):  # unCLIP's decoder also reads the true CLIP image embedding
                image = {"embed": clip_image_embeds(pipe.clip, data.images[lo:lo + batch]), "embed_keep": torch.ones(len(x0), dtype=torch.bool)}
            for t_value in LEVELS:
                noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t_value * 100_003 + lo))
                t = torch.full((len(x0),), t_value)
                x_t = diffusion.q_sample(x0, t, noise)
                for k, mask in enumerate((tokens.mask, torch.zeros_like(tokens.mask))):
                    pred = denoise(x_t, t, **image, tokens=tokens.tokens, token_mask=mask).clamp(-1, 1)
                    sums[t_value][k] += float(((pred - x0) ** 2).mean(dim=(1, 2, 3)).sum())
    return {t: (s[0] / scenes, s[1] / scenes) for t, s in sums.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="shapes pipelines (shipped names or assembled folders)")
    p.add_argument("--scenes", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print("| model | " + " | ".join(f"t={t} caption / none" for t in LEVELS) + " | mean x0-MSE with caption | mean text gain |")
    print("|---" * (len(LEVELS) + 3) + "|")
    for name in args.models:
        result = text_gain(t2i.load_pipeline(name), args.scenes)
        cells = [f"{c:.4f} / {n:.4f}" for c, n in result.values()]
        with_caption = sum(c for c, _ in result.values()) / len(LEVELS)
        gain = sum(n - c for c, n in result.values()) / len(LEVELS)
        print(f"| {name} | " + " | ".join(cells) + f" | {with_caption:.4f} | {gain:.4f} |", flush=True)


if __name__ == "__main__":
    main()
