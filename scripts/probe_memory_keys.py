"""How often does the caption memory find the right emoji for a prompt? Keys compared, no decoding.

    python scripts/probe_memory_keys.py [--prompts t2i/assets/prompts/emoji-natural-dev.jsonl]

The emoji pipeline hands prior and decoder the training caption nearest to a prompt by the
frozen MiniLM's sentence embedding, so how often that caption belongs to the target emoji
bounds what natural prompts can score. Keys tried, for the memory's captions (a shipped
pipeline's `memory/captions.json`):
- captions: each caption's own sentence embedding (what the memory keeps today);
- framings: the mean embedding of the caption under every emoji framing of caption augmentation
  ("an elephant", "a picture of an elephant", ...), as CLIP averages its class-name embeddings
  over prompt templates (Radford et al. 2021);
- both: the mean of the two (a caption stays its own nearest key).
Tune on the development prompts (t2i/assets/prompts/emoji-natural-dev.jsonl, written for this,
disjoint from the evaluation's prompts and emoji); `t2i eval prompts` reports the evaluation set.
Encoding the framings takes about 12 minutes on one core.
"""
import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from t2i.data.emoji import load_emoji
from t2i.eval.prompts import EMOJI_DEV_PROMPTS, emoji_prompts, emoji_target_groups
from t2i.text.augment import ADJECTIVES, EMOJI_TEMPLATES, fill
from t2i.text.encoder import get_text_encoder


def sentence_embeddings(texts: list[str], batch: int = 512) -> torch.Tensor:
    encoder = get_text_encoder(32)
    return F.normalize(torch.cat([encoder.encode(texts[s:s + batch]).pooled.float() for s in range(0, len(texts), batch)]), dim=-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", default=str(EMOJI_DEV_PROMPTS))
    p.add_argument("--memory", default="t2i/assets/models/emoji/memory", help="a caption memory folder (its captions.json)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    captions = json.loads((Path(args.memory) / "captions.json").read_text())
    train = load_emoji(16, "train")
    groups_of: dict[str, set[int]] = {}  # a caption can name several emoji ("kitty")
    for caps, group in zip(train.captions, train.groups.tolist()):
        for c in caps:
            groups_of.setdefault(c, set()).add(group)
    owners = [groups_of.get(c, set()) for c in captions]

    own = sentence_embeddings(captions)
    framings = [fill(t, c, ADJECTIVES[0]) for c in captions for t in EMOJI_TEMPLATES]
    framed = sentence_embeddings(framings).view(len(captions), len(EMOJI_TEMPLATES), -1).mean(1)
    keys = {"captions": own, "framings": F.normalize(framed, dim=-1), "both": F.normalize(own + F.normalize(framed, dim=-1), dim=-1)}

    target_group = emoji_target_groups()
    chosen = [q for q in emoji_prompts(Path(args.prompts)) if q.split == "train"]
    queries = sentence_embeddings([q.prompt for q in chosen])
    targets = [target_group[q.target] for q in chosen]
    base = None
    print(f"{len(chosen)} prompts on training emoji ({args.prompts}); {len(captions)} captions, {len(EMOJI_TEMPLATES)} framings each\n")
    print("| keys | nearest caption is of the target | gained | lost | captions their own nearest |")
    print("| --- | --- | --- | --- | --- |")
    for name, k in keys.items():
        right = torch.tensor([t in owners[i] for i, t in zip((queries @ k.T).argmax(1).tolist(), targets)])
        base = right if base is None else base
        itself = float(((own @ k.T).argmax(1) == torch.arange(len(captions))).float().mean())
        print(f"| {name} | {right.float().mean():.3f} | {int((right & ~base).sum())} | {int((~right & base).sum())} | {itself:.4f} |")


if __name__ == "__main__":
    main()
