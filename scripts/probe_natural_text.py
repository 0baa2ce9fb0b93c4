"""Does a pipeline's text side understand prompts as people write them? Seconds, no decoding.

    python scripts/probe_natural_text.py t2i/assets/models/emoji [--prior]
    python scripts/probe_natural_text.py t2i/assets/models/shapes --data shapes

Shapes: for each paraphrase of each evaluation file and of the development set, is its CLIP text
embedding nearer to its own canonical prompt's than to any other canonical prompt of the file,
how near (cosine), and how often below 0.8 (where, on the fourth file, every prompt failed)?

For each prompt of `t2i eval prompts` (emoji), and for the exact name of its target emoji: is the
nearest emoji image, by cosine of the CLIP text embedding to every image's CLIP image embedding,
an image of the target (any skin tone)? With --prior, the same for one prior sample per prompt
(the pipeline's prior settings), which is what the decoder is given. The lookup row is the
`eval prompts` baseline (nearest training caption by MiniLM), for reference.
"""
import argparse

import numpy as np
import torch

from t2i.data.dataset import resize_uint8
from t2i.data.emoji import load_emoji
from t2i.eval.prompts import SHAPES_DEV_PROMPTS, SHAPES_PROMPTS, emoji_prompts, emoji_target_groups, retrieval_images, shapes_paraphrases
from t2i.pipelines.loading import load_pipeline
from t2i.pipelines.sampling import clip_image_embeds
from t2i.unclip.sampling import run_prior


def nearest_hits(embeds: torch.Tensor, images: torch.Tensor, groups: np.ndarray, targets: np.ndarray) -> float:
    return float((groups[(embeds @ images.T).argmax(1).numpy()] == targets).mean())


def clip_image_embeddings(pipe, images: np.ndarray) -> torch.Tensor:
    return clip_image_embeds(pipe.clip, resize_uint8(images, pipe.clip.model.config.image_size))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="pipeline name or folder")
    p.add_argument("--prior", action="store_true", help="also the prior's image embeddings (one sample per prompt)")
    p.add_argument("--data", choices=("emoji", "shapes"), default="emoji")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    if args.data == "shapes":
        return shapes_table(pipe)
    everything = load_emoji(64, "all")
    images = clip_image_embeddings(pipe, everything.images)
    groups = emoji_target_groups()
    print("| split | text | CLIP text → nearest image | prior → nearest image | lookup |")
    print("| --- | --- | --- | --- | --- |")
    for split in ("train", "heldout"):
        chosen = [q for q in emoji_prompts() if q.split == split]
        targets = np.array([groups[q.target] for q in chosen])
        looked_up, _ = retrieval_images([q.prompt for q in chosen])
        lookup = nearest_hits(clip_image_embeddings(pipe, looked_up), images, everything.groups, targets)
        for kind, texts in (("natural prompts", [q.prompt for q in chosen]), ("exact names", [q.target for q in chosen])):
            enc, text = pipe.encode_text(texts)
            row = f"| {split} | {kind} | {nearest_hits(text, images, everything.groups, targets):.3f} |"
            if args.prior:
                o = pipe.defaults
                z = run_prior(pipe.prior, text, enc.tokens, enc.mask, steps=o.prior_steps, guidance=o.prior_guidance,
                              candidates=o.prior_candidates, sampler=o.sampler, generator=torch.Generator().manual_seed(0))
                row += f" {nearest_hits(z, images, everything.groups, targets):.3f} |"
            else:
                row += " |"
            print(row + (f" {lookup:.3f} |" if kind == "natural prompts" else " |"))


def shapes_table(pipe) -> None:
    """Per evaluation file (each written blind at its time) and the development set."""
    print("| paraphrases | nearest canonical prompt is its own | cosine to its own | share below 0.8 |")
    print("| --- | --- | --- | --- |")
    for label, path in [(p.name, p) for p in SHAPES_PROMPTS] + [("development", SHAPES_DEV_PROMPTS)]:
        chosen = shapes_paraphrases(path)
        canonical = sorted({q.canonical for q in chosen})
        own = torch.tensor([canonical.index(q.canonical) for q in chosen])
        unit = lambda texts: torch.nn.functional.normalize(pipe.encode_text(texts)[1], dim=-1)  # noqa: E731
        said, meant = unit([q.prompt for q in chosen]), unit(canonical)
        hits = float(((said @ meant.T).argmax(1) == own).float().mean())
        cosine = (said * meant[own]).sum(-1)
        print(f"| {label} ({len(chosen)}) | {hits:.3f} | {float(cosine.mean()):.3f} | {float((cosine < 0.8).float().mean()):.3f} |")

if __name__ == "__main__":
    main()
