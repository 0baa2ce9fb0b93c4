"""Does the shapes pipeline lose a paraphrase in its decoder's draws or in ranking them?

    python scripts/probe_candidates.py draw runs/cands-dev.pt --dev          # about 28 minutes on one thread
    python scripts/probe_candidates.py rank runs/cands-dev.pt t2i/assets/models/shapes/clip [--candidates 4]

`draw`: for each paraphrase of the evaluation (or, with --dev, the development) set and for its
canonical prompt, 4 images at the pipeline's defaults, each with 8 decoder candidates instead of
the default 4. Every candidate is graded against the canonical prompt (bicubic to 64 pixels; the
upsampler is left out) and saved with what ranking reads: the candidates, the prompt's CLIP text
embedding and its tokens. Candidate j has the same noise whatever the number of candidates, so
the first 4 are the default pipeline's.

`rank`: rank the saved candidates with a CLIP (a component folder or a training run) and print,
per task, paraphrase / canonical pass rates of the pick (matching head + scale × cosine, as the
pipeline ranks), of the head and the cosine alone, of the pick made with the canonical prompt's
text (a ranker that reads every paraphrase perfectly), of the medoid candidate ("consensus")
alone and added to the pick, of the best possible pick (any candidate passes) and of no ranking
(the first candidate). Files drawn since session 38 also keep the
prior's embeddings, and add two rules: the candidate nearest the prior's embedding ("prior",
in place of the caption's text embedding) and the head plus that ("head+prior"). The prior and
decoder are untouched by the CLIP's head, so a CLIP that differs in its head alone ranks these
candidates exactly as the pipeline would with it.
"""
import argparse
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from t2i.checkpoint import load_component
from t2i.data.dataset import to_uint8
from t2i.data.shapes_eval import score_image
from t2i.eval.prompts import SHAPES_DEV_PROMPTS, SHAPES_PROMPTS, shapes_paraphrases
from t2i.pipelines.loading import load_pipeline

IMAGES, DRAWN = 4, 8


def graded(candidate: torch.Tensor, canonical: str) -> bool:
    x = F.interpolate(candidate[None].float(), size=64, mode="bicubic", align_corners=False)
    return score_image(to_uint8(x)[0], canonical).passed


def draw(args) -> None:
    pipe = load_pipeline(args.model)
    seen = []
    ranked = pipe.best_candidates

    def keep(candidates, target, enc=None):
        seen.append({"candidates": candidates.half(), "target": target, "tokens": enc.tokens.half(), "mask": enc.mask})
        return ranked(candidates, target, enc)

    pipe.best_candidates = keep
    decode = pipe.decode

    def decode_keeping_embeds(embeds, *a, **kw):  # the prior's embeddings: what a ranker by the prior compares with
        seen.append({"prior": embeds.clone()})
        return decode(embeds, *a, **kw)

    pipe.decode = decode_keeping_embeds
    records = []
    for i, q in enumerate(shapes_paraphrases(SHAPES_DEV_PROMPTS if args.dev else SHAPES_PROMPTS)):
        for which, text in (("paraphrase", q.prompt), ("canonical", q.canonical)):
            seen.clear()
            pipe(text, num_images=IMAGES, seed=args.seed, first_index=i, decoder_candidates=DRAWN)
            r = {**seen[0], **seen[1]}
            r["passed"] = torch.tensor([[graded(c, q.canonical) for c in row] for row in r["candidates"]])
            records.append({**r, "task": q.task, "which": which, "prompt": text})
        print(f"{i + 1} paraphrases drawn", flush=True)
    torch.save(records, args.out)


@torch.no_grad()
def rank(args) -> None:
    clip = load_component(args.clip).model.eval()
    k, rates = args.candidates, defaultdict(list)
    records = torch.load(args.out)
    for i, r in enumerate(records):
        text = records[i | 1]  # records come in (paraphrase, canonical) pairs: the canonical one of r's pair
        candidates, passed = r["candidates"][:, :k].float(), r["passed"][:, :k].float()
        b = len(candidates)
        images = candidates.flatten(0, 1)
        tokens = clip.image_tokens(images)
        embeds = clip.embed_image_tokens(tokens).view(b, k, -1)
        cosine = (embeds * r["target"][:, None]).sum(-1)
        match = lambda rec, images=images, tokens=tokens, b=b: clip.match_logits(  # noqa: E731
            images, rec["tokens"].float().repeat_interleave(k, 0), rec["mask"].repeat_interleave(k, 0), image_tokens=tokens).view(b, k)
        head = match(r)
        rules = [("pick", head + clip.scale * cosine), ("head", head), ("cosine", cosine)]
        # a ranker that reads the paraphrase perfectly: the pick, with the canonical prompt's text embedding and tokens
        rules += [("pick, canonical text", match(text) + clip.scale * (embeds * text["target"][:, None]).sum(-1))]
        # consensus: a candidate's mean cosine to the other candidates of its image (the medoid wins)
        consensus = ((embeds @ embeds.transpose(1, 2)).sum(-1) - 1) / max(1, k - 1)
        rules += [("consensus", consensus)] + [(f"pick+{w:g}·consensus", head + clip.scale * (cosine + w * consensus)) for w in (0.5, 1, 2, 4)]
        if "prior" in r:  # the candidate nearest the prior's embedding, which read the prompt (saved since session 38)
            to_prior = (embeds * r["prior"][:, None]).sum(-1)
            rules += [("prior", to_prior), ("head+prior", head + clip.scale * to_prior)]
        for rule, score in rules:
            rates[r["task"], r["which"], rule] += passed[torch.arange(b), score.argmax(1)].tolist()
        rates[r["task"], r["which"], "any"] += passed.max(1).values.tolist()
        rates[r["task"], r["which"], "first"] += passed[:, 0].tolist()
    tasks = list(dict.fromkeys(t for t, _, _ in rates))
    print(f"{args.clip}, {k} candidates: paraphrase / canonical (difference)\n")
    print("| rule | " + " | ".join(tasks) + " |")
    print("| --- |" + " --- |" * len(tasks))
    for rule in dict.fromkeys(rule for _, _, rule in rates):
        if not rates[tasks[0], "paraphrase", rule]:
            continue
        cells = []
        for t in tasks:
            p, c = np.mean(rates[t, "paraphrase", rule]), np.mean(rates[t, "canonical", rule])
            cells.append(f"{p:.3f} / {c:.3f} ({p - c:+.3f})")
        print(f"| {rule} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("draw")
    d.add_argument("out")
    d.add_argument("--model", default="shapes")
    d.add_argument("--dev", action="store_true", help="the development paraphrases instead of the evaluation set")
    d.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("rank")
    r.add_argument("out")
    r.add_argument("clip")
    r.add_argument("--candidates", type=int, default=4, choices=range(1, DRAWN + 1))
    for q in (d, r):
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    draw(args) if args.command == "draw" else rank(args)


if __name__ == "__main__":
    main()
