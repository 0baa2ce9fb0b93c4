"""Which unCLIP stage loses a shapes paraphrase: the prior, the decoder, or the ranking of its
candidates? Swap the text each reads.

    python scripts/probe_paraphrase_stages.py shapes --tasks counting [--prompts-file F] [--ranking]

For each paraphrase of the evaluation set (t2i/assets/prompts/shapes-paraphrases*.jsonl, or
--prompts-file) of the given tasks, 4 images at the pipeline's defaults, graded against the
canonical prompt: the prior reads the paraphrase (P) or its canonical prompt (C), and the decoder,
given the prior's embeddings, reads P or C. The prior's noise is the same in the P and C rows,
and so is the decoder's: only the text differs. The decoder's text is also what its candidates
are ranked against (matching head and CLIP cosine); --ranking adds rows where the ranking reads
the other text. About 8 minutes per 32 paraphrases on one thread, 12 with --ranking.
"""
import argparse

import numpy as np
import torch

from t2i.data.shapes_eval import score_image
from t2i.diffusion.noise import RowGenerators
from t2i.eval.prompts import shapes_paraphrases
from t2i.pipelines.loading import load_pipeline
from t2i.unclip.sampling import run_prior

IMAGES = 4


def prior_embeddings(pipe, texts: list[str], seed: int) -> torch.Tensor:
    o = pipe.defaults
    enc, text_embed = pipe.encode_text(texts)
    rep = lambda x: x.repeat_interleave(IMAGES, dim=0)  # noqa: E731
    return run_prior(pipe.prior, rep(text_embed), rep(enc.tokens), rep(enc.mask), steps=o.prior_steps, guidance=o.prior_guidance,
                     candidates=o.prior_candidates, sampler=o.sampler_of("prior"), spacing=o.spacing,
                     generator=RowGenerators.for_call(seed, len(texts), IMAGES))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="shapes")
    p.add_argument("--tasks", default="counting", help="comma-separated tasks of the paraphrase set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompts-file", help="a paraphrase file of the evaluation's format (default: the evaluation set)")
    p.add_argument("--ranking", action="store_true", help="also rank the decoder's candidates against the other text")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    chosen = [q for q in (shapes_paraphrases(args.prompts_file) if args.prompts_file else shapes_paraphrases()) if q.task in args.tasks.split(",")]
    said, meant = [q.prompt for q in chosen], [q.canonical for q in chosen]
    embeds = {"P": prior_embeddings(pipe, said, args.seed), "C": prior_embeddings(pipe, meant, args.seed)}
    print(f"{len(chosen)} paraphrases ({args.tasks}), {IMAGES} images each, seed {args.seed}\n")
    print("| prior reads | decoder reads | ranking reads | pass rate | paraphrases below 0.75 |")
    print("| --- | --- | --- | --- | --- |")
    rows = [("P", "P", "P"), ("C", "P", "P"), ("P", "C", "C"), ("C", "C", "C")] + ([("P", "P", "C"), ("P", "C", "P")] if args.ranking else [])
    rank = pipe.best_candidates
    for prior_text, decoder_text, ranking_text in rows:
        texts = said if decoder_text == "P" else meant
        rates = []
        for i, text in enumerate(texts):
            z = embeds[prior_text][i * IMAGES:(i + 1) * IMAGES]
            if ranking_text != decoder_text:  # the candidates ranked against the other text: its CLIP embedding and tokens
                enc, target = pipe.encode_text([(said if ranking_text == "P" else meant)[i]])
                pipe.best_candidates = lambda candidates, _target, _enc=None, enc=enc, target=target: rank(
                    candidates, target.expand(len(candidates), -1), type(enc)(*(x.expand(len(candidates), *x.shape[1:]) for x in (enc.tokens, enc.mask, enc.pooled))))
            images = pipe(text, num_images=IMAGES, seed=args.seed, first_index=i, image_embedding=z)
            pipe.best_candidates = rank
            rates.append(float(np.mean([score_image(np.asarray(im), meant[i]).passed for im in images])))
        low = ", ".join(f'"{s}" {r:.2f}' for s, r in zip(said, rates) if r < 0.75)
        print(f"| {prior_text} | {decoder_text} | {ranking_text} | {np.mean(rates):.3f} | {low} |", flush=True)


if __name__ == "__main__":
    main()
