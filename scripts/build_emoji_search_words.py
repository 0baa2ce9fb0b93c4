"""Write t2i/assets/emoji/search_words.json: words people use for each emoji, for retrieval only.

    pip install -e ".[build]"          # build_emoji.py's helpers need the emoji package
    npm pack emojilib@4.0.3
    python scripts/build_emoji_search_words.py --emojilib emojilib-4.0.3.tgz

The MIT-licensed emojilib npm package keeps crowd-written search keywords per emoji: "frisbee"
for flying disc, "cockerel" for rooster, "loo" for toilet, "onigiri" for rice ball. CLDR's
names and keywords (our training captions) miss many of these, and the caption memory's
MiniLM retrieval misses the prompts that use them ("a frisbee" went to "honeybee"). These words
are never trained on: the caption memory adds them as extra keys, each standing for its emoji's
CLDR name (t2i/pipelines/caption_memory.py). Output: {base emoji's unified code: words}, for the
base emoji of t2i/assets/emoji/emoji.json, minus the emoji's own captions and emojilib's
slug name; and LICENSE-emojilib.txt beside it.
"""
from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

from build_emoji import ASSETS
from build_emoji import _plain as plain  # code points without FE0F, which the sources use differently


def read_emojilib(path: Path) -> tuple[dict[str, list[str]], str]:
    """{plain unified code: keywords (the first is a slug of the name)} and the licence."""
    with tarfile.open(path, "r:gz") as tar:
        data = json.load(tar.extractfile("package/dist/emoji-en-US.json"))
        licence = tar.extractfile("package/LICENSE").read().decode("utf-8")
    return {plain("-".join(f"{ord(c):04X}" for c in emoji)): words for emoji, words in data.items()}, licence


def search_words(records: list[dict], library: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per base emoji (the first record of each group), its keywords that are not already captions."""
    out, seen = {}, set()
    for record in records:
        if record["group"] in seen:
            continue
        seen.add(record["group"])
        captions = set(record["captions"])
        words = [" ".join(w.replace("_", " ").split()).lower() for w in library.get(plain(record["unified"]), [])[1:]]
        words = [w for w in dict.fromkeys(words) if w and w not in captions]
        if words:
            out[record["unified"]] = words
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emojilib", required=True, help="the emojilib npm tarball (npm pack emojilib@4.0.3)")
    parser.add_argument("--out", default=str(ASSETS))
    args = parser.parse_args()
    library, licence = read_emojilib(Path(args.emojilib))
    out = Path(args.out)
    records = json.loads((out / "emoji.json").read_text(encoding="utf-8"))["images"]
    words = search_words(records, library)
    body = {"version": 1, "source": f"npm {Path(args.emojilib).name}", "words": words}
    (out / "search_words.json").write_text(json.dumps(body, ensure_ascii=True, separators=(",", ":")) + "\n")
    (out / "LICENSE-emojilib.txt").write_text("Search words for retrieval (search_words.json) from the emojilib npm package\n"
                                              "(https://github.com/muan/emojilib):\n\n" + licence)
    print(f"{len(words)} of {len({r['group'] for r in records})} base emoji have search words "
          f"({sum(map(len, words.values()))} words) -> {out / 'search_words.json'}")


if __name__ == "__main__":
    main()
