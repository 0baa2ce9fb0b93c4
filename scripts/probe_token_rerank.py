"""Can token matching rank the caption memory's nearest keys better than the pooled embedding?

    python scripts/probe_token_rerank.py [MEMORY] [--top 10]

Seconds, no decoding. The memory's pooled MiniLM embedding sends "grandpa with glasses" to the
caption "glasses": the noun outweighs what is said of it. BERTScore (Zhang et al. 2020) matches
token states instead: recall is the mean, over the prompt's tokens, of each token's best cosine
to the key's tokens, so a key that leaves "grandpa" unmatched scores low. Each prompt's `--top`
nearest keys are reranked by cosine + λ · (BERTScore recall, precision or F1, plain or IDF-weighted
over the keys' tokens) on the development and evaluation prompts (training emoji); the table gives
the share whose chosen key is a caption of the target emoji (as scripts/probe_memory_hits.py).
"""
import argparse
import math
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from probe_memory_hits import caption_owners  # scripts/ is on the path when run as a script

from t2i.data.emoji import load_emoji
from t2i.data.search_words import search_aliases
from t2i.data.sources import load_search_words
from t2i.eval.prompts import EMOJI_DEV_PROMPTS, EMOJI_PROMPTS, emoji_prompts, emoji_target_groups
from t2i.pipelines.caption_memory import CaptionMemory, caption_aliases, memory_captions
from t2i.text.encoder import get_text_encoder

WEIGHTS = (0.25, 0.5, 1.0, 2.0)
SCORES = ("recall", "precision", "F1")


def token_states(encoder, strings: list[str], idf: dict[int, float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per string: its tokens' unit states (n, 384) without [CLS]/[SEP], and their IDF weights (n,)."""
    enc = encoder.encode(strings)
    out = []
    for i, ids in enumerate(encoder._token_ids(strings)):
        n = min(len(ids), enc.tokens.shape[1]) - 2  # truncated strings keep their first tokens
        out.append((F.normalize(enc.tokens[i, 1:1 + n], dim=-1), torch.tensor([idf.get(t, 1.0) for t in ids[1:1 + n]])))
    return out


def bertscore(prompt, key, weighted: bool) -> dict[str, float]:
    (qs, qw), (ks, kw) = prompt, key
    if not weighted:
        qw, kw = torch.ones_like(qw), torch.ones_like(kw)
    sim = qs @ ks.T
    r = float((sim.max(1).values * qw).sum() / qw.sum())
    p = float((sim.max(0).values * kw).sum() / kw.sum())
    return {"recall": r, "precision": p, "F1": 2 * p * r / (p + r)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("memory", nargs="?", default="t2i/assets/models/emoji/memory")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    memory = CaptionMemory.load(Path(args.memory))
    train = load_emoji(16, "train")
    captions = memory_captions(train)
    known = set(captions)
    pairs = caption_aliases(train) + search_aliases(train, load_search_words("emoji", "train"))
    aliases = [key for key, _ in dict.fromkeys(pairs) if key not in known]
    keys = captions + aliases  # the memory's key order (build_caption_memory)
    if captions != memory.captions or len(keys) != len(memory):
        raise SystemExit(f"{args.memory} is not the memory of today's emoji captions and search words")
    owners, target_group = caption_owners(), emoji_target_groups()
    encoder = get_text_encoder(32)
    ids = encoder._token_ids(keys)
    df = Counter(t for row in ids for t in set(row[1:-1]))
    idf = {t: math.log((len(keys) + 1) / (c + 1)) for t, c in df.items()}
    rows = {}
    for path in (EMOJI_DEV_PROMPTS, EMOJI_PROMPTS):
        prompts = [q for q in emoji_prompts(path) if q.split == "train"]
        pooled = encoder.encode([q.prompt for q in prompts]).pooled
        top = memory.similarities(pooled).topk(args.top, dim=1)
        states = token_states(encoder, [q.prompt for q in prompts], idf)
        shown = sorted({int(i) for i in top.indices.flatten()})
        key_states = dict(zip(shown, token_states(encoder, [keys[i] for i in shown], idf)))
        right = lambda q, key: target_group[q.target] in owners.get(memory.captions[int(memory._caption_rows(torch.tensor(key)))], ())  # noqa: E731
        rows.setdefault("pooled cosine (shipped)", []).append(sum(right(q, int(t[0])) for q, t in zip(prompts, top.indices)) / len(prompts))
        rows.setdefault(f"target among the {args.top} nearest", []).append(
            sum(any(right(q, int(k)) for k in t) for q, t in zip(prompts, top.indices)) / len(prompts))
        for weighted in (False, True):
            scores = [[bertscore(states[i], key_states[int(k)], weighted) for k in top.indices[i]] for i in range(len(prompts))]
            for score in SCORES:
                for w in WEIGHTS:
                    picks = [int(top.indices[i][max(range(args.top), key=lambda j: top.values[i][j] + w * scores[i][j][score])]) for i in range(len(prompts))]
                    label = f"+ {w} × {'IDF ' if weighted else ''}{score}"
                    rows.setdefault(label, []).append(sum(right(q, k) for q, k in zip(prompts, picks)) / len(prompts))
    print("| ranking | development: nearest key is of the target | evaluation |")
    print("| --- | --- | --- |")
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
