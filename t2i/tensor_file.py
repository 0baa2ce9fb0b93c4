"""A safetensors file filled in place, for tables too large to hold in memory while writing.

safetensors' save_file needs every tensor in memory, and a 617k-caption text table is 16 GB
(the matching head's, from the shapes grammar with its hard negatives). Here the file is laid
out first (header, then zeros), mapped, and handed out as writable tensors; the caller fills
them a chunk at a time and the kernel writes the pages back, so memory holds only the chunk.
The file appears at `path` only once complete (written under a temporary name, then renamed).
A writer holds a lock on its temporary file, so one left by a killed writer can be told from one
still being written (`is_abandoned`) and cleaned up.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from t2i.files import file_mode

try:
    import fcntl
except ImportError:  # Windows: no locks, so no temporary file is ever called abandoned
    fcntl = None

_DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bool: "BOOL", torch.int64: "I64"}


@contextmanager
def writable_tensor_file(
    path: Path, layout: dict[str, tuple[torch.dtype, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield zero-filled tensors {name: tensor of (dtype, shape)} backed by a new safetensors file;
    on a clean exit it is flushed and renamed to `path`, on an error removed. Writes to the
    tensors after the block would change the file: read it back instead."""
    unknown = [dtype for dtype, _ in layout.values() if dtype not in _DTYPE_NAMES]
    if unknown:
        raise ValueError(f"writable_tensor_file cannot store {unknown}")
    # widest element first, so every tensor starts aligned to its own element size
    names = sorted(layout, key=lambda n: (-layout[n][0].itemsize, n))
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset, spans = 0, {}
    for name in names:
        dtype, shape = layout[name]
        size = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": _DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        spans[name] = offset
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data starts 8-byte aligned
    start = 8 + len(encoded)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    if fcntl is not None:  # held while the file or its map is open: released by the writer's exit, even a kill
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with os.fdopen(fd, "r+b") as f:
            f.write(struct.pack("<Q", len(encoded)) + encoded)
            f.truncate(start + offset)  # sparse zeros until filled
            # not closed here: tensors the caller still holds keep the map alive (it is file-backed, no memory)
            mapped = mmap.mmap(f.fileno(), start + offset)
            tensors = {
                name: torch.frombuffer(mapped, dtype=layout[name][0], count=math.prod(layout[name][1]), offset=start + spans[name]).view(layout[name][1])
                for name in names
                if math.prod(layout[name][1])  # frombuffer refuses count 0; an empty tensor needs no bytes
            }
            tensors.update({name: torch.zeros(layout[name][1], dtype=layout[name][0]) for name in names if name not in tensors})
            yield tensors
            mapped.flush()
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_abandoned(path: Path, min_age_s: float = 60.0) -> bool:
    """Whether a temporary file of writable_tensor_file was left by a writer that is gone: no
    process holds its lock, and it is older than `min_age_s` (not one just created, whose writer
    has yet to take the lock)."""
    if fcntl is None:
        return False
    try:
        if time.time() - os.stat(path).st_mtime < min_age_s:
            return False
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
