"""Regenerate the emoji dataset shipped in t2i/assets/emoji/ from Noto Color Emoji.

Two sources give the same images:

  npm   the `emoji-datasource-google` package (64x64 RGBA PNGs plus emoji.json metadata):
          npm pack emoji-datasource-google@16.0.0
          npm pack emojibase-data@17.0.0
          python scripts/build_emoji.py --source npm --npm emoji-datasource-google-16.0.0.tgz \
              --emojibase emojibase-data-17.0.0.tgz
  font  the Noto Color Emoji bitmap font (Debian: fonts-noto-color-emoji), rendered with PIL:
          python scripts/build_emoji.py --source font \
              --font /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf [--emoji-json emoji.json]
        Without --emoji-json the emoji list comes from the `emoji` package (no categories).

Captions come from the `emoji` package (CLDR names and aliases) and, with --emojibase, from the
CLDR keywords that the MIT-licensed emojibase-data npm package carries (`npm pack
emojibase-data@17.0.0`): a caption listing an emoji's keywords ("animal, cat, face, kitten,
kitty, pet") and each keyword that names at most KEYWORD_MAX_EMOJI base emoji ("kitty") as a
caption of its own, so training meets the words people use beside the CLDR name. Skin-tone
variants share their base emoji's group, and ~10% of base emoji are held out by a stable hash. Output:
emoji_64.webp (a lossless sprite sheet, tiles in row-major order), emoji.json (per-image
metadata) and the licence texts. `--measure` compares storage formats before writing.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import tarfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import emoji
import numpy as np
from PIL import Image, ImageDraw, ImageFont

TILE = 64
COLUMNS = 64  # 64 tiles per row keeps the sheet well inside WebP's 16383 px limit
HELD_OUT_PERCENT = 10
ASSETS = Path(__file__).resolve().parent.parent / "t2i" / "assets" / "emoji"
SHEET_NAME = "emoji_64.webp"
TONES = {"1F3FB": "light", "1F3FC": "medium-light", "1F3FD": "medium", "1F3FE": "medium-dark", "1F3FF": "dark"}
# The emoji package writes a variant's tones into its name, e.g. woman_light_skin_tone_beard
_TONE_WORDS = re.compile(r"_(?:light|medium-light|medium|medium-dark|dark)_skin_tone")
# GitHub shortcodes such as 'u5408' or '+1' name a code point, not a subject
_NOT_WORDS = re.compile(r"u[0-9a-f]{4,5}|[^a-z]*")
KEYWORD_MAX_EMOJI = 2  # a keyword shared by more base emoji ("face", "animal") names none of them
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


@dataclass
class Entry:
    """One image to produce: an emoji, or a skin-tone variant of one (tones non-empty)."""

    unified: str  # upper-case hex code points joined by '-', as in emoji.json
    base: str  # unified code of the base emoji; all variants of a base share a group
    tones: tuple[str, ...]
    category: str
    fallback: list[str]  # emoji.json name/short_names, used when the emoji package has no entry
    image: str = ""  # file name inside the npm package


def chars(unified: str) -> str:
    return "".join(chr(int(cp, 16)) for cp in unified.split("-"))


def unified_of(text: str) -> str:
    return "-".join(f"{ord(c):04X}" for c in text)


def clean(name: str) -> str:
    """':Côte_d’Ivoire:' -> "cote d'ivoire": plain lower-case ASCII words."""
    text = name.strip(":").replace("_", " ").translate(_QUOTES)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def tone_phrase(tones: tuple[str, ...]) -> str:
    unique = list(dict.fromkeys(tones))  # "light, light" (two people, same tone) reads as one tone
    return " and ".join(f"{TONES[t]} skin tone" for t in unique)


def is_flag(unified: str) -> bool:
    cps = [int(cp, 16) for cp in unified.split("-")]
    regional = all(0x1F1E6 <= cp <= 0x1F1FF for cp in cps)
    subdivision = cps[0] == 0x1F3F4 and len(cps) > 2 and all(0xE0020 <= cp <= 0xE007F for cp in cps[1:])
    return regional or subdivision


def package_names(unified: str, *others: str) -> list[str]:
    """The emoji package's CLDR name followed by its aliases, raw (with colons)."""
    for code in (unified, *others):
        data = emoji.EMOJI_DATA.get(chars(code)) if code else None
        if data:
            return [data["en"], *data.get("alias", [])]
    return []


def dedupe(captions: list[str]) -> list[str]:
    return [c for c in dict.fromkeys(captions) if c]


def useful(names: list[str]) -> list[str]:
    """The first (CLDR) name always, aliases only when they are words."""
    return names[:1] + [n for n in names[1:] if not _NOT_WORDS.fullmatch(n)]


def base_captions(entry: Entry, non_qualified: str = "") -> list[str]:
    names = useful([clean(n) for n in package_names(entry.unified, non_qualified)]
                   or [clean(n) for n in entry.fallback if n])
    if is_flag(entry.unified) and names and not any("flag" in n for n in names):
        names.append(f"flag of {names[0]}")  # country names alone do not say the image is a flag
    return dedupe(names)


def read_emojibase(path: Path) -> tuple[dict[str, list[str]], str]:
    """{unified code without FE0F: CLDR keywords} and the licence, from the emojibase-data
    tarball or an unpacked package/ (its en/data.json)."""
    if path.is_dir():
        root = path / "package" if (path / "package" / "en").is_dir() else path
        data, licence = json.loads((root / "en" / "data.json").read_text()), (root / "LICENSE").read_text()
    else:
        with tarfile.open(path, "r:gz") as tar:
            data = json.load(tar.extractfile("package/en/data.json"))
            licence = tar.extractfile("package/LICENSE").read().decode("utf-8")
    return {_plain(item["hexcode"]): [clean(t) for t in item.get("tags", [])] for item in data}, licence


def _plain(unified: str) -> str:
    return "-".join(cp for cp in unified.upper().split("-") if cp != "FE0F")


def keyword_captions(entries: list[Entry], keywords: dict[str, list[str]]) -> dict[str, list[str]]:
    """{base unified: extra captions}: the keyword list, and each rare keyword alone."""
    bases = {e.unified: keywords.get(_plain(e.unified), []) for e in entries if not e.tones}
    uses: dict[str, int] = {}
    for words in bases.values():
        for w in set(words):
            uses[w] = uses.get(w, 0) + 1
    out = {}
    for unified, words in bases.items():
        listed = [", ".join(words)] if len(words) > 1 else []  # a lone keyword is a list only if rare
        rare = [w for w in words if uses[w] <= KEYWORD_MAX_EMOJI]
        if listed or rare:
            out[unified] = listed + rare
    return out


def variant_captions(entry: Entry, base: list[str]) -> list[str]:
    """'waving hand, medium skin tone' from the variant's own name, then each base caption + tone."""
    tone = tone_phrase(entry.tones)
    own = []
    for name in package_names(entry.unified):
        stem = _TONE_WORDS.sub("", name)
        own.append(f"{clean(stem)}, {tone}" if stem != name else clean(name))
    return dedupe(useful(own) + [f"{b}, {tone}" for b in base])


def held_out(base_unified: str) -> bool:
    """Stable across runs and Python versions, unlike hash(); one decision per base emoji."""
    digest = hashlib.sha256(base_unified.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELD_OUT_PERCENT


def entries_from_emoji_json(meta: list[dict]) -> tuple[list[Entry], dict[str, str]]:
    """Entries in emoji.json's sort order, skipping the Component category (bare tone swatches)."""
    entries, non_qualified = [], {}
    for item in sorted(meta, key=lambda m: m["sort_order"]):
        if item["category"] == "Component":
            continue
        fallback = [item.get("name") or "", *item.get("short_names", [])]
        base = Entry(item["unified"], item["unified"], (), item["category"], fallback, item["image"])
        non_qualified[item["unified"]] = item.get("non_qualified") or ""
        entries.append(base)
        for key, var in (item.get("skin_variations") or {}).items():
            entries.append(Entry(var["unified"], base.unified, tuple(key.split("-")), item["category"], [], var["image"]))
    return entries, non_qualified


def entries_from_emoji_package() -> list[Entry]:
    """Every fully-qualified emoji the `emoji` package knows, variants grouped under their base."""
    qualified = {k for k, v in emoji.EMOJI_DATA.items() if v["status"] == emoji.STATUS["fully_qualified"]}
    by_name = {emoji.EMOJI_DATA[t]["en"]: t for t in qualified}
    entries = []
    for text in sorted(qualified, key=lambda t: [ord(c) for c in t]):
        tones = tuple(f"{ord(c):04X}" for c in text if f"{ord(c):04X}" in TONES)
        stripped = "".join(c for c in text if f"{ord(c):04X}" not in TONES)
        # By name first: 'men holding hands: light, dark' is built on 🧑 but its base is 👬;
        # then by code points, where '☝🏻' drops the FE0F that its base '☝️' carries
        stem = _TONE_WORDS.sub("", emoji.EMOJI_DATA[text]["en"])
        # 'kiss: person, person, light, dark' is a variant of plain 'kiss' (💏)
        candidates = (by_name.get(stem), by_name.get(stem.replace("_person_person", "")),
                      stripped, stripped[:1] + "\ufe0f" + stripped[1:])
        base = next((b for b in candidates if b in qualified), text) if tones else text
        entries.append(Entry(unified_of(text), unified_of(base), tones if base != text else (), "", []))
    return entries


def read_npm(path: Path) -> tuple[list[dict], str, dict[str, bytes]]:
    """emoji.json, LICENSE and the 64 px Google PNGs from the npm tarball or an unpacked package/."""
    prefix = "img/google/64/"
    if path.is_dir():
        root = path / "package" if (path / "package" / "emoji.json").exists() else path
        images = {p.name: p.read_bytes() for p in (root / prefix).glob("*.png")}
        return json.loads((root / "emoji.json").read_text()), (root / "LICENSE").read_text(), images
    meta, licence, images = None, "", {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            name = member.name.removeprefix("package/")
            if name == "emoji.json":
                meta = json.load(tar.extractfile(member))
            elif name == "LICENSE":
                licence = tar.extractfile(member).read().decode("utf-8")
            elif name.startswith(prefix) and name.endswith(".png"):
                images[name[len(prefix):]] = tar.extractfile(member).read()
    if meta is None:
        raise ValueError(f"{path} has no package/emoji.json; is it the emoji-datasource-google tarball?")
    return meta, licence, images


def on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


class FontRenderer:
    """Draws one emoji with the colour bitmap font, centred on a square, at TILE px."""

    def __init__(self, font_path: Path) -> None:
        self.font = ImageFont.truetype(str(font_path), 109)  # CBDT strikes exist only at 109 px
        self.glyph_width = self.font.getbbox("\U0001F600")[2]

    def __call__(self, text: str) -> np.ndarray | None:
        left, top, right, bottom = self.font.getbbox(text)
        # No ligature in the font draws several glyphs side by side: not one emoji
        if right - left > 1.2 * self.glyph_width:
            return None
        side = max(right - left, bottom - top)
        canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        offset = ((side - (right - left)) // 2 - left, (side - (bottom - top)) // 2 - top)
        ImageDraw.Draw(canvas).text(offset, text, font=self.font, embedded_color=True)
        if canvas.getbbox() is None:  # missing glyph draws nothing
            return None
        return np.asarray(on_white(canvas).resize((TILE, TILE), Image.LANCZOS))


def build(entries: list[Entry], render: Callable[[Entry], np.ndarray | None],
          non_qualified: dict[str, str], keywords: dict[str, list[str]] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Images and per-image records; entries whose image cannot be produced are skipped.
    Keyword captions (see keyword_captions) follow the names, so captions[0] stays the CLDR name."""
    base_caps = {e.unified: base_captions(e, non_qualified.get(e.unified, "")) for e in entries if not e.tones}
    for unified, extra in keyword_captions(entries, keywords or {}).items():
        if base_caps.get(unified):
            base_caps[unified] = dedupe(base_caps[unified] + extra)
    images, records, groups, missing = [], [], {}, []
    for entry in entries:
        captions = base_caps.get(entry.base, [])
        if entry.tones:
            captions = variant_captions(entry, captions)
        pixels = render(entry)
        if pixels is None or not captions:
            missing.append(entry.unified)
            continue
        group = groups.setdefault(entry.base, len(groups))
        images.append(pixels)
        records.append({"unified": entry.unified, "captions": captions, "group": group,
                        "category": entry.category, "held_out": held_out(entry.base)})
    if missing:
        more = " ..." if len(missing) > 10 else ""
        print(f"skipped {len(missing)} emoji without an image or caption: {' '.join(missing[:10])}{more}")
    return np.stack(images), records


def sprite(images: np.ndarray) -> Image.Image:
    rows = -(-len(images) // COLUMNS)
    sheet = np.full((rows * TILE, COLUMNS * TILE, 3), 255, np.uint8)
    for i, tile in enumerate(images):
        r, c = divmod(i, COLUMNS)
        sheet[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tile
    return Image.fromarray(sheet)


def measure(images: np.ndarray) -> None:
    """Print size and decode time of each candidate storage form."""
    sheet = sprite(images)
    candidates = {
        "npz (savez_compressed)": None,
        "PNG sprite (optimize)": ("PNG", {"optimize": True}),
        "WebP lossless sprite (method 6)": ("WEBP", {"lossless": True, "quality": 100, "method": 6}),
    }
    for label, spec in candidates.items():
        buf = io.BytesIO()
        if spec is None:
            np.savez_compressed(buf, images=images)
            start = time.perf_counter()
            np.load(io.BytesIO(buf.getvalue()))["images"]
        else:
            sheet.save(buf, spec[0], **spec[1])
            start = time.perf_counter()
            np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        print(f"{label:34s} {len(buf.getvalue()) / 1e6:6.2f} MB  load {time.perf_counter() - start:.2f} s")


def licence_header(source: str) -> str:
    how = ("taken from the 64x64 PNGs of the emoji-datasource-google npm package" if source == "npm"
           else "rendered from the NotoColorEmoji.ttf font (font licence: SIL OFL 1.1, see the end of this file)")
    return ("The emoji images in emoji_64.webp come from Noto Color Emoji\n"
            "(https://github.com/googlefonts/noto-emoji), Copyright 2013-2017 Google Inc.,\n"
            "licensed under the Apache License, Version 2.0, reproduced below.\n"
            f"They were {how},\ncomposited on white and stored as 64x64 RGB tiles.\n\n")


def write_assets(out: Path, images: np.ndarray, records: list[dict], args: argparse.Namespace,
                 datasource_licence: str, emojibase_licence: str = "") -> None:
    apache = Path(args.apache_license)
    if not apache.exists():
        raise FileNotFoundError(f"Apache-2.0 licence text not found at {apache}; pass --apache-license PATH")
    out.mkdir(parents=True, exist_ok=True)
    sprite(images).save(out / SHEET_NAME, "WEBP", lossless=True, quality=100, method=6)
    header = {"version": 1, "source": args.source, "file": SHEET_NAME, "tile": TILE,
              "columns": COLUMNS, "count": len(records)}
    # One record per line: compact, yet diffs between builds stay readable
    lines = ",\n".join(json.dumps(r, ensure_ascii=True) for r in records)
    (out / "emoji.json").write_text(json.dumps(header)[:-1] + ', "images": [\n' + lines + "\n]}\n")
    noto = licence_header(args.source) + apache.read_text()
    font_copyright = Path("/usr/share/doc/fonts-noto-color-emoji/copyright")
    if args.source == "font" and font_copyright.exists():
        noto += "\n\n" + "=" * 72 + "\nDebian copyright file of fonts-noto-color-emoji\n\n" + font_copyright.read_text()
    (out / "LICENSE-noto-emoji.txt").write_text(noto)
    datasource = out / "LICENSE-emoji-datasource.txt"
    if datasource_licence:
        datasource.write_text("emoji.json metadata (names, categories, skin-tone variants) from the\n"
                              "emoji-datasource npm package (https://github.com/iamcal/emoji-data):\n\n"
                              + datasource_licence)
    elif datasource.exists():
        datasource.unlink()  # this build used none of that package
    keywords = out / "LICENSE-emojibase-data.txt"
    if emojibase_licence:
        keywords.write_text("Keyword captions (CLDR annotations) from the emojibase-data npm package\n"
                            "(https://github.com/milesj/emojibase):\n\n" + emojibase_licence)
    elif keywords.exists():
        keywords.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["npm", "font"], default="npm")
    parser.add_argument("--npm", default="/tmp/npmdl/emoji-datasource-google-16.0.0.tgz",
                        help="emoji-datasource-google tarball or unpacked package directory")
    parser.add_argument("--font", default="/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
    parser.add_argument("--emoji-json", default="", help="font source: emoji list and categories from emoji.json")
    parser.add_argument("--apache-license", default="/usr/share/common-licenses/Apache-2.0")
    parser.add_argument("--out", default=str(ASSETS))
    parser.add_argument("--emojibase", default="", help="emojibase-data tarball or unpacked package: keyword captions")
    parser.add_argument("--measure", action="store_true", help="compare storage formats before writing")
    args = parser.parse_args()

    datasource_licence, non_qualified = "", {}
    if args.source == "npm":
        meta, datasource_licence, pngs = read_npm(Path(args.npm))
        entries, non_qualified = entries_from_emoji_json(meta)

        def render(entry: Entry) -> np.ndarray | None:
            data = pngs.get(entry.image)
            return None if data is None else np.asarray(on_white(Image.open(io.BytesIO(data))))
    else:
        renderer = FontRenderer(Path(args.font))
        if args.emoji_json:
            json_path = Path(args.emoji_json)
            entries, non_qualified = entries_from_emoji_json(json.loads(json_path.read_text()))
            licence_file = json_path.parent / "LICENSE"
            datasource_licence = licence_file.read_text() if licence_file.exists() else ""
        else:
            entries = entries_from_emoji_package()

        def render(entry: Entry) -> np.ndarray | None:
            return renderer(chars(entry.unified))

    keywords, emojibase_licence = read_emojibase(Path(args.emojibase)) if args.emojibase else ({}, "")
    images, records = build(entries, render, non_qualified, keywords)
    groups = {r["group"] for r in records}
    held = {r["group"] for r in records if r["held_out"]}
    print(f"{len(records)} images, {len(groups)} groups, {len(held)} groups held out "
          f"({sum(r['held_out'] for r in records)} images)")
    if args.measure:
        measure(images)
    write_assets(Path(args.out), images, records, args, datasource_licence, emojibase_licence)
    for path in sorted(Path(args.out).iterdir()):
        print(f"{path.name:32s} {path.stat().st_size / 1e6:7.2f} MB")


if __name__ == "__main__":
    main()
