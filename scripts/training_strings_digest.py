"""A fingerprint of every string training can show a model, to prove a change leaves it alone.

    python scripts/training_strings_digest.py

Prints, per dataset, the number of captions and variants and a SHA-256 over each caption's
drawn variants (what t2i.train.captions.CaptionTable samples from) and all its variants (what
the disjointness test checks). Augmentation never says an evaluation prompt, so a new file in
t2i/assets/prompts can change training: run this before and after adding one (session 44:
the second shapes paraphrase set left both digests unchanged).
"""
import hashlib

from t2i.eval.prompts import training_caption_set
from t2i.text.augment import all_variants, caption_variants, templates_for


def main() -> None:
    for data in ("shapes", "emoji"):
        captions = sorted(training_caption_set(data))
        templates, digest, count = templates_for(data), hashlib.sha256(), 0
        for caption in captions:
            drawn, every = caption_variants(caption, templates), all_variants(caption, templates)
            count += len(every)
            digest.update("\0".join([caption, *drawn, "\1", *every, "\2"]).encode())
        print(f"{data}: {len(captions)} captions, {count} variants, sha256 {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
