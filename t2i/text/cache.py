"""Disk cache of caption encodings, so a training run encodes each caption set only once.

One safetensors file per (set of unique captions, max_length, encoder version), named by a
sha256 of those. Rows are the sorted unique captions; tokens are stored and kept in memory
as float16 (50k captions x 32 x 384 is 1.2 GB in fp16, twice that in fp32), so callers cast
per batch: `enc.select(idx).to(device, torch.float32)`.

A file also lists its captions (metadata), so a new set that shares most of its captions with a
cached one (a changed caption augmentation, a few more images) encodes only the captions it
adds: when numerals joined the caption variants, re-encoding all 87,000 strings of the shapes
set took 12 minutes on this project's CPU.

Each new set leaves the old file behind (the shapes table is 6 GB, and every change to the
caption augmentation makes a new one: 46 GB had piled up after a few weeks here). So after a
file is written, the least recently used cache files are deleted until the folder's cache
files total at most $T2I_TEXT_CACHE_GB gigabytes (32 by default); the file just written is
always kept. Only files named as this module names them are counted or deleted; a run that
still reads a deleted file keeps its mapping (the data lives until it is closed). A table is
written in place into its file (t2i/tensor_file.py), so a run stopped while encoding leaves a
partial file: the next pruning deletes it once no process holds its writer's lock.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path

import torch

from t2i.errors import InputError
from t2i.tensor_file import is_abandoned, writable_tensor_file
from t2i.text import encoder as _encoder
from t2i.text.encoder import EMBED_DIM, ENCODER_VERSION, TextEncoding

_CHUNK = 16384  # rows encoded or copied at a time: 400 MB of tokens, at max_length 32

LIMIT_VARIABLE = "T2I_TEXT_CACHE_GB"
DEFAULT_LIMIT_GB = 32.0  # two of the largest tables: the shapes matching head's is 15 GB, its text tower's 7
_CACHE_FILE = re.compile(r"[0-9a-f]{64}\.safetensors")  # what encode_cached names a file: pruning touches nothing else
_PARTIAL_FILE = re.compile(r"\.[0-9a-f]{64}\..+\.tmp")  # one being written (writable_tensor_file's name for it)


def default_cache_dir() -> Path:
    """$T2I_CACHE/text if T2I_CACHE is set (the project-wide cache root), else ~/.cache/t2i/text."""
    root = os.environ.get("T2I_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "t2i") / "text"


def cache_key(unique_captions: list[str], max_length: int, layers: int = 0) -> str:
    """sha256 hex of the sorted unique captions, max_length, the encoder version (and the
    encoder's depth, when not the whole of it)."""
    fields = {"captions": sorted(unique_captions), "max_length": max_length, "version": ENCODER_VERSION}
    if layers:
        fields["layers"] = layers
    payload = json.dumps(fields, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def encode_cached(
    captions: list[str],
    *,
    max_length: int = 32,
    layers: int = 0,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> tuple[TextEncoding, list[int]]:
    """Encode the unique captions once (from disk when cached) and map each caption to its row.

    Returns (encoding, index): encoding has U rows, one per sorted unique caption, with
    tokens (U, T, 384) float16, mask (U, T) bool, pooled (U, 384) float32; index[i] is the
    row of captions[i], so `encoding.select(index)` lines up with `captions`.
    """
    if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
        raise InputError("captions must be a list of strings")
    if not captions:
        raise InputError("encode_cached needs at least one caption")
    limit = limit_gb()  # a bad setting fails before minutes of encoding, not after
    unique = sorted(set(captions))
    row_of = {caption: i for i, caption in enumerate(unique)}
    index = [row_of[caption] for caption in captions]

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"{cache_key(unique, max_length, layers)}.safetensors"
    if path.exists():
        try:
            encoding = _load(path, len(unique))
            _mark_used(path)
            return encoding, index
        except Exception as err:  # any unreadable or inconsistent file is just a cache miss
            warnings.warn(f"ignoring corrupt text cache {path} ({err}); re-encoding {len(unique)} captions", stacklevel=2)

    _write_reusing(path, unique, max_length, layers, progress)
    for removed in prune_cache(folder, keep=path, limit_bytes=int(limit * 2**30)):
        if _PARTIAL_FILE.fullmatch(removed.name):
            warnings.warn(f"text cache: deleted {removed.name}, a table left half-written by a run that was stopped", stacklevel=2)
        else:
            warnings.warn(f"text cache over {limit:g} GB: deleted the least recently used table {removed.name}", stacklevel=2)
    # read back mapped: the table a run trains from is on disk, not in its memory, from its first run too
    return _load(path, len(unique)), index


def limit_gb() -> float:
    """The text cache's size limit in gigabytes: $T2I_TEXT_CACHE_GB, else DEFAULT_LIMIT_GB."""
    raw = os.environ.get(LIMIT_VARIABLE)
    if raw is None or not raw.strip():
        return DEFAULT_LIMIT_GB
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{LIMIT_VARIABLE}={raw!r}: give the text cache's size limit as a positive number of gigabytes")
    return value


def prune_cache(folder: Path, keep: Path | None = None, limit_bytes: int | None = None) -> list[Path]:
    """Delete the least recently used cache files in `folder` (oldest modification time first;
    a cache hit renews it) until the cache files total at most `limit_bytes`, never `keep`.
    Returns the files deleted. Files not named as encode_cached names them are neither counted
    nor touched, but for the partial tables of writers killed mid-write, which are deleted too."""
    limit = int(limit_gb() * 2**30) if limit_bytes is None else limit_bytes
    files, removed = [], []
    for path in Path(folder).iterdir() if Path(folder).is_dir() else ():
        if _PARTIAL_FILE.fullmatch(path.name) and is_abandoned(path):
            path.unlink(missing_ok=True)
            removed.append(path)
        elif _CACHE_FILE.fullmatch(path.name):
            try:
                stat = path.stat()
            except FileNotFoundError:  # another process pruned it meanwhile
                continue
            files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files, key=lambda f: f[:1]):
        if total <= limit:
            break
        if keep is not None and path == Path(keep):
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


def _mark_used(path: Path) -> None:
    """Renew a file's modification time, which orders pruning; a read-only cache is still read."""
    try:
        os.utime(path)
    except OSError:
        pass


def _write_reusing(path: Path, unique: list[str], max_length: int, layers: int, progress: bool) -> None:
    """Write the table of the sorted unique captions to `path`, reusing the rows of the cached
    file (in the same folder) that shares most of them and encoding the rest. The file is
    filled in place a chunk at a time, so memory holds a chunk, not the table (16 GB for the
    shapes matching head's 617k captions)."""
    cached, old = _largest_overlap(path.parent, set(unique), max_length, layers)
    new = [c for c in unique if c not in cached]
    encoder = _encoder.get_text_encoder(max_length, layers) if new else None
    lengths = encoder.lengths(new) if new else []
    width = max(([old.mask.shape[1]] if old is not None else []) + ([min(max(lengths), max_length)] if new else []))
    if (long := sum(n > max_length for n in lengths)):  # said once here, not by each chunk's encode
        warnings.warn(f"{long} of {len(new)} captions are longer than {max_length} tokens and were truncated", stacklevel=3)
    row_of = {caption: i for i, caption in enumerate(unique)}
    u = len(unique)
    layout = {"tokens": (torch.float16, (u, width, EMBED_DIM)), "mask": (torch.bool, (u, width)), "pooled": (torch.float32, (u, EMBED_DIM))}
    metadata = {"version": ENCODER_VERSION, "captions": json.dumps(unique, ensure_ascii=False), "max_length": str(max_length), "layers": str(layers)}
    reused = [(row_of[c], i) for c, i in cached.items()]
    chunks = [("reused", reused[s : s + _CHUNK]) for s in range(0, len(reused), _CHUNK)]
    chunks += [("new", new[s : s + _CHUNK]) for s in range(0, len(new), _CHUNK)]
    if progress and new:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"caption table ({len(new)} to encode)", unit="chunk")
    with writable_tensor_file(path, layout, metadata) as table:
        for kind, chunk in chunks:
            if kind == "reused":  # rows copied from the old table, padded to the new width
                dest, rows = (torch.tensor(list(side)) for side in zip(*chunk))
                part = old.select(rows)
            else:
                dest, part = torch.tensor([row_of[c] for c in chunk]), encoder.encode(chunk, dtype=torch.float16, warn_truncated=False)
            t = part.mask.shape[1]
            table["tokens"][dest, :t], table["mask"][dest, :t], table["pooled"][dest] = part.tokens, part.mask, part.pooled


def _largest_overlap(folder: Path, wanted: set[str], max_length: int, layers: int) -> tuple[dict[str, int], TextEncoding | None]:
    """(caption -> row, encoding) of the readable cache file, at the same settings, that holds
    the most of `wanted`; ({}, None) when none holds any."""
    from safetensors import safe_open

    best: tuple[int, Path | None, list[str]] = (0, None, [])
    for path in folder.glob("*.safetensors") if folder.is_dir() else ():
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            if (meta.get("version"), meta.get("max_length"), meta.get("layers")) != (ENCODER_VERSION, str(max_length), str(layers)):
                continue
            captions = json.loads(meta["captions"])
        except Exception:  # unreadable or foreign files are not reused
            continue
        shared = len(wanted.intersection(captions))
        if shared > best[0]:
            best = (shared, path, captions)
    if best[1] is None:
        return {}, None
    try:
        old = _load(best[1], len(best[2]))
    except Exception:
        return {}, None
    return {c: i for i, c in enumerate(best[2]) if c in wanted}, old


def _load(path: Path, num_rows: int) -> TextEncoding:
    """Read and validate one cache file; raises on anything unexpected."""
    from safetensors.torch import load_file

    data = load_file(path)
    if set(data) != {"tokens", "mask", "pooled"}:
        raise ValueError(f"unexpected tensors {sorted(data)}")
    tokens, mask, pooled = data["tokens"], data["mask"], data["pooled"]
    if tokens.dtype != torch.float16 or mask.dtype != torch.bool or pooled.dtype != torch.float32:
        raise ValueError(f"unexpected dtypes {tokens.dtype}, {mask.dtype}, {pooled.dtype}")
    if len(mask) != num_rows:
        raise ValueError(f"{len(mask)} rows for {num_rows} captions")
    return TextEncoding(tokens, mask, pooled)  # validates the shapes
