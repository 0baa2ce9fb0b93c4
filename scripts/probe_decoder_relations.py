"""Does a shapes decoder (or Imagen base) read the relation in its caption ("a circle to the left of a square")?

    python scripts/probe_decoder_relations.py shapes [--decoder RUN_OR_COMPONENT]
    python scripts/probe_decoder_relations.py imagen-shapes [--decoder RUN_OR_COMPONENT]

For two-object scenes of two different shapes, captioned with the benchmark's position template,
the decoder predicts x0 from the same noised image (and, for unCLIP's, the scene's true CLIP
image embedding) twice: with the true caption and with the relation swapped ("to the right of"). A decoder that
reads the relation moves its prediction between the two; one that does not gives the same
picture. The same is measured for the best possible predictor at pure noise, the mean image of
all scenes with that caption: how much knowing the relation lowers the best x0 error there,
and how far apart the two best predictions are. That bounds what the diffusion loss pays for
learning relations.
"""
import argparse
from collections import defaultdict

import numpy as np
import torch

import t2i
from t2i.checkpoint import load_component, resolve_component
from t2i.data.dataset import to_model_range
from t2i.data.shapes import FIRST_LEFT_OR_TOP, RELATIONS, random_scene, relation_holds, render_scene
from t2i.pipelines.sampling import clip_image_embeds, diffusion_of
from t2i.text.negatives import RELATIONS as MIRROR  # each relation phrase and its mirror image


def relation_scenes(count: int, size: int, seed: int):
    """(scenes, captions, swapped captions) for two-object scenes of two shapes in a relation."""
    rng = np.random.default_rng(seed)
    scenes, captions, swapped = [], [], []
    while len(scenes) < count:
        a, b = random_scene(rng, size, 2)
        rel = [r for r in RELATIONS if relation_holds((a.cx, a.cy), (b.cx, b.cy), r, size)]
        if a.shape == b.shape or not rel:
            continue
        scenes.append([a, b])
        captions.append(f"a {a.shape} {rel[0]} a {b.shape}")
        swapped.append(f"a {a.shape} {MIRROR[rel[0]]} a {b.shape}")
    return scenes, captions, swapped


def render(scenes, size: int) -> np.ndarray:
    return np.stack([render_scene(s, size) for s in scenes])


def caption_means(images: np.ndarray, captions: list[str]) -> dict[str, np.ndarray]:
    """The mean image (model range) of each caption's scenes: the best x0 at pure noise."""
    x = to_model_range(images).numpy()
    by_caption = defaultdict(list)
    for i, c in enumerate(captions):
        by_caption[c].append(i)
    return {c: x[idx].mean(0) for c, idx in by_caption.items()}


def oracle(images: np.ndarray, captions: list[str], swapped: list[str], means: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """At pure noise the best x0 is the mean image of the condition. Returns the best x0-MSE when
    the two shapes and the relation's axis (side by side or stacked) are known, when the relation
    itself is known too, and the mean |difference| between the best predictions for a caption
    and for its swap. `means` are caption_means(images, captions)."""
    x = to_model_range(images).numpy()
    by_caption = defaultdict(list)
    for i, c in enumerate(captions):
        by_caption[c].append(i)
    both = {c: x[by_caption[c] + by_caption.get(s, [])].mean(0) for c, s in zip(captions, swapped)}
    mse_rel = float(np.mean([((x[i] - means[c]) ** 2).mean() for i, c in enumerate(captions)]))
    mse_pair = float(np.mean([((x[i] - both[c]) ** 2).mean() for i, c in enumerate(captions)]))
    gaps = [np.abs(means[c] - means[s]).mean() for c, s in set(zip(captions, swapped)) if s in means]
    return mse_pair, mse_rel, float(np.mean(gaps))


@torch.no_grad()
def layout_from_noise(pipe, denoise, means: dict[str, np.ndarray], mirror: dict[str, str], draws: int = 8) -> tuple[float, float, tuple[float, float, float], float]:
    """Whether the base's prediction from pure noise carries a caption's layout: its mean over
    `draws` noise draws, for every caption, against that caption's mean image, against its mirror
    image's and against the mean of all scenes. Returns the mean squared distances to the own
    mean and to the mean of all scenes, the fraction of captions whose prediction is nearer the
    own mean than the mirror's (a half when the relation is not read), and the caption means'
    own distance to the mean of all scenes (where a base that ignores the layout sits). The
    fraction is given for all captions, for those whose first object is left or on top ("to the
    left of", "above") and for the others."""
    captions = sorted(means)
    enc = encoding(pipe, captions)
    t = torch.full((len(captions),), 999)
    generator = torch.Generator().manual_seed(0)
    pred = sum(denoise(torch.randn(len(captions), 3, *means[captions[0]].shape[1:], generator=generator), t, tokens=enc.tokens, token_mask=enc.mask)
               for _ in range(draws)).numpy() / draws
    everything = np.mean(list(means.values()), axis=0)
    to_own = np.mean([((p - means[c]) ** 2).mean() for p, c in zip(pred, captions)])
    to_all = np.mean([((p - everything) ** 2).mean() for p in pred])
    nearer = {c: ((p - means[c]) ** 2).mean() < ((p - means[mirror[c]]) ** 2).mean() for p, c in zip(pred, captions) if mirror[c] in means}
    # a base that reads the words' order but not the relation word puts the first-named object
    # on the left (or on top) whatever the relation: right for one group, wrong for the other
    leads = {c: any(f" {r} " in c for r in FIRST_LEFT_OR_TOP) for c in nearer}
    first_left = [v for c, v in nearer.items() if leads[c]]
    first_right = [v for c, v in nearer.items() if not leads[c]]
    spread = np.mean([((m - everything) ** 2).mean() for m in means.values()])
    shares = tuple(float(np.mean(v)) for v in (list(nearer.values()), first_left, first_right))
    return float(to_own), float(to_all), shares, float(spread)


def encoding(pipe, prompts: list[str]):
    """The token states of prompts (unCLIP's encode_text also returns CLIP's text embedding)."""
    out = pipe.encode_text(prompts)
    return out[0] if isinstance(out, tuple) else out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a shapes pipeline (unCLIP or Imagen): shipped name or folder")
    p.add_argument("--decoder", help="probe this decoder or Imagen base (run or component folder) instead of the pipeline's")
    p.add_argument("--scenes", type=int, default=256, help="scenes the decoder is probed on")
    p.add_argument("--oracle-scenes", type=int, default=12000, help="scenes the best predictor is estimated from")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = t2i.load_pipeline(args.model)
    role = "decoder" if hasattr(pipe, "decoder") else "imagen-base"  # Imagen's base reads the caption alone
    decoder = load_component(resolve_component(args.decoder), role=role) if args.decoder else getattr(pipe, "decoder", None) or pipe.base
    size = decoder.model.config.image_size

    scenes, captions, swapped = relation_scenes(args.oracle_scenes, size, seed=1)
    oracle_images = render(scenes, size)
    means, mirror = caption_means(oracle_images, captions), dict(zip(captions, swapped))
    mse_pair, mse_rel, gap = oracle(oracle_images, captions, swapped, means)
    print(f"best possible at pure noise: x0-MSE {mse_pair:.4f} knowing the shapes and the axis, {mse_rel:.4f} knowing the relation too; "
          f"the two best predictions differ by {gap:.4f} per pixel")

    scenes, captions, swapped = relation_scenes(args.scenes, size, seed=0)
    x0 = to_model_range(render(scenes, size))
    with torch.no_grad():
        keep = torch.ones(len(x0), dtype=torch.bool)
        image = {"embed": clip_image_embeds(pipe.clip, render(scenes, pipe.clip.model.config.image_size)), "embed_keep": keep} if role == "decoder" else {}
        true_enc, swap_enc = (encoding(pipe, c) for c in (captions, swapped))
    diffusion = diffusion_of(decoder)
    denoise = diffusion.denoiser(decoder.model)
    print("t     x0-MSE true caption  swapped  no caption   |x0(true) - x0(swapped)|  |x0(true) - x0(no caption)|")
    for t_value in (999, 950, 900, 800, 700):
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t_value))
        t = torch.full((len(x0),), t_value)
        x_t = diffusion.q_sample(x0, t, noise)
        with torch.no_grad():
            pred = {name: denoise(x_t, t, **image, tokens=enc.tokens, token_mask=mask)
                    for name, enc, mask in (("true", true_enc, true_enc.mask), ("swapped", swap_enc, swap_enc.mask),
                                            ("none", true_enc, torch.zeros_like(true_enc.mask)))}
        mse = {k: float(((v - x0) ** 2).mean()) for k, v in pred.items()}
        print(f"{t_value:<5} {mse['true']:.4f}               {mse['swapped']:.4f}   {mse['none']:.4f}       "
              f"{float((pred['true'] - pred['swapped']).abs().mean()):.4f}                    {float((pred['true'] - pred['none']).abs().mean()):.4f}")
    if role == "imagen-base":  # unCLIP's decoder also reads the scene's image embedding, which gives the layout away
        to_own, to_all, nearer, spread = layout_from_noise(pipe, denoise, means, mirror)
        print(f"from pure noise, the mean prediction for each caption is {to_own:.4f} from its caption's mean image and {to_all:.4f} from the mean of all "
              f"scenes (the caption means are {spread:.4f} from it); nearer its own mean than its mirror's for {nearer[0]:.0%} of captions "
              f"({nearer[1]:.0%} of those whose first object is left or on top, {nearer[2]:.0%} of the others)")


if __name__ == "__main__":
    main()
