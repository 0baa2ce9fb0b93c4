"""Search words: what people call an image beside its captions, as retrieval keys never trained on.

Emoji has emojilib's ("frisbee" for flying disc, "loo" for toilet; t2i/assets/emoji/search_words.json,
scripts/build_emoji_search_words.py). The caption memory (t2i/pipelines/caption_memory.py) and the
lookup baseline of `t2i eval prompts` both turn them into (key, caption) pairs with
search_aliases, so each word stands for a caption the models were trained on.
"""
from __future__ import annotations

from t2i.data.dataset import ImageCaptionSet

# a word shared by more images ("face", "animal") names none of them; scripts/build_emoji.py
# keeps CLDR keywords as captions by the same rule (KEYWORD_MAX_EMOJI)
WORD_MAX_IMAGES = 2


def one_image_per_group(data: ImageCaptionSet) -> list[int]:
    """The images a caption memory keeps the captions of: one per group (an emoji's skin-tone variants add
    only the tone), or every image when the data has no groups."""
    if data.groups is None:
        return list(range(len(data)))
    seen: set[int] = set()
    return [i for i, g in enumerate(data.groups.tolist()) if not (g in seen or seen.add(g))]


def search_aliases(data: ImageCaptionSet, words: list[list[str]] | None) -> list[tuple[str, str]]:
    """(key, caption) pairs from each image's search words (t2i.data.sources.load_search_words): every
    word that names at most WORD_MAX_IMAGES of the images kept (one per group), and the image's name followed by all its
    words ("flying disc, sports, frisbee, game, golf, sport"), each standing for the name. Words
    that already are captions are left to those."""
    if not words:
        return []
    keep = one_image_per_group(data)
    known = {c for i in keep for c in data.captions[i]}
    uses: dict[str, int] = {}
    for i in keep:
        for w in set(words[i]):
            uses[w] = uses.get(w, 0) + 1
    pairs = []
    for i in keep:
        name, own = data.captions[i][0], [w for w in words[i] if w not in known]
        pairs += [(w, name) for w in own if uses[w] <= WORD_MAX_IMAGES]
        if words[i]:
            pairs.append((", ".join([name, *words[i]]), name))
    return pairs
