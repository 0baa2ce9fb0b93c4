"""How often does a pipeline's caption memory hand prior and decoder a caption of the right emoji?

    python scripts/probe_memory_hits.py t2i/assets/models/emoji runs/emoji-words [--split train]

Seconds, no decoding. For each pipeline (or memory folder) and each prompt set (development and
evaluation, t2i/assets/prompts/emoji-natural*.jsonl), the share of prompts whose nearest caption,
as the pipeline picks it (`CaptionMemory.nearest_captions`), is a caption of the target emoji
(a caption that several emoji share counts for each). Natural prompts score about this share
times the exact names' fidelity, so it bounds what a memory can give.
"""
import argparse
from pathlib import Path

import torch

from t2i.data.emoji import load_emoji
from t2i.eval.prompts import EMOJI_DEV_PROMPTS, EMOJI_PROMPTS, emoji_prompts, emoji_target_groups
from t2i.pipelines.caption_memory import CaptionMemory
from t2i.pipelines.loading import shipped_models
from t2i.text.encoder import get_text_encoder


def load_memory(path: str) -> CaptionMemory:
    folder = Path(path) if Path(path).exists() else shipped_models()[path]
    return CaptionMemory.load(folder if (folder / "memory.safetensors").exists() else folder / "memory")


def caption_owners() -> dict[str, set[int]]:
    """Each emoji caption -> the emoji (groups) it names: a retrieved caption is right when it names the target."""
    data = load_emoji(16, "all")
    owners: dict[str, set[int]] = {}
    for caps, group in zip(data.captions, data.groups.tolist()):
        for c in caps:
            owners.setdefault(c, set()).add(group)
    return owners


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("memories", nargs="+", help="pipeline names or folders, or memory folders")
    p.add_argument("--split", choices=("train", "heldout"), default="train")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    owners, target_group = caption_owners(), emoji_target_groups()
    sets = {"development": EMOJI_DEV_PROMPTS, "evaluation": EMOJI_PROMPTS}
    chosen = {name: [q for q in emoji_prompts(path) if q.split == args.split] for name, path in sets.items()}
    pooled = {name: get_text_encoder(32).encode([q.prompt for q in qs]).pooled for name, qs in chosen.items()}
    print("| memory | keys | " + " | ".join(f"{name} ({len(qs)}): nearest caption is of the target" for name, qs in chosen.items()) + " |")
    print("| --- | --- |" + " --- |" * len(chosen))
    for path in args.memories:
        memory = load_memory(path)
        cells = []
        for name, qs in chosen.items():
            nearest = memory.nearest_captions(pooled[name])
            cells.append(f"{sum(target_group[q.target] in owners.get(c, ()) for q, c in zip(qs, nearest)) / len(qs):.3f}")
        print(f"| {path} | {len(memory)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
