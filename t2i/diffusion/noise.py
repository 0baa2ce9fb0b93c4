"""Noise that belongs to an image, not to a batch.

With one generator for a whole batch, an image's noise depends on which other images share its
batch, so `--batch-size` changes the pictures. RowGenerators keeps one generator per batch row,
seeded from what identifies the image (seed, prompt index, sample index): the same image comes
out however the work is batched. Samplers and pipelines accept either kind via `randn`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from t2i.errors import InputError

MAX_SEED = 2**63 - 1
MAX_ROWS = 1024  # images in one pipeline call: more would not fit in memory (pipe.generate batches any number)


def check_request(seed: object, num_images: object, first_index: object = 0) -> None:
    """What a pipeline call's seed and counts must be: whole numbers (never bools, floats or
    strings), a seed from 0 to 2^63-1, at least one image, a first prompt index >= 0."""
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not whole(seed) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be a whole number from 0 to 2^63-1, got {seed!r}")
    if not whole(num_images) or num_images < 1:
        raise InputError(f"number of images must be a whole number >= 1, got {num_images!r}")
    if not whole(first_index) or first_index < 0:
        raise InputError(f"first_index must be a whole number >= 0, got {first_index!r}")


def row_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, stable across runs and machines (unlike hash())."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def image_seeds(seed: int, num_images: int, prompt_index: int = 0) -> list[int]:
    """The noise seeds of images 0..num_images-1 of one prompt: row_seeds that make a call draw
    exactly what a call with this seed draws for that prompt."""
    check_request(seed, num_images, prompt_index)
    return [row_seed(seed, prompt_index, j) for j in range(num_images)]


class RowGenerators:
    """One CPU torch.Generator per batch row."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    @classmethod
    def for_images(cls, seed: int, num_prompts: int, num_images: int, first_prompt: int = 0) -> RowGenerators:
        """Rows prompt-major: (prompt first_prompt + i, sample j) for i < num_prompts, j < num_images."""
        check_request(seed, num_images, first_prompt)
        if num_prompts * num_images > MAX_ROWS:
            raise InputError(f"{num_prompts * num_images} images in one call; at most {MAX_ROWS} (pipe.generate batches a longer list)")
        return cls([s for i in range(num_prompts) for s in image_seeds(seed, num_images, first_prompt + i)])

    @classmethod
    def for_call(cls, seed: int, num_prompts: int, num_images: int, first_prompt: int = 0, row_seeds: Sequence[int] | None = None) -> RowGenerators:
        """A pipeline call's generators: for_images, or the given seeds of each row (prompt-major),
        which is how requests with seeds of their own share one batch (see image_seeds)."""
        if row_seeds is None:
            return cls.for_images(seed, num_prompts, num_images, first_prompt)
        seeds = list(row_seeds)
        if len(seeds) != num_prompts * num_images:
            raise InputError(f"row_seeds has {len(seeds)} seeds for {num_prompts * num_images} images")
        for s in seeds:
            check_request(s, 1)
        if len(seeds) > MAX_ROWS:
            raise InputError(f"{len(seeds)} images in one call; at most {MAX_ROWS}")
        return cls(seeds)

    def __len__(self) -> int:
        return len(self.generators)

    def repeat(self, k: int, salt: str) -> RowGenerators:
        """k rows per row (candidates), each with its own seed derived from its row's."""
        return RowGenerators([row_seed(s, salt, j) for s in self.seeds for j in range(k)])

    def randn(self, shape: Sequence[int], *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if shape[0] != len(self):
            raise ValueError(f"noise for {shape[0]} rows from {len(self)} row generators")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype) for g in self.generators])


Generator = torch.Generator | RowGenerators | None


def randn(shape: Sequence[int], generator: Generator = None, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Standard normal noise of `shape` from a generator, per-row generators, or the global RNG;
    drawn where the generator lives, then moved to `device`."""
    if isinstance(generator, RowGenerators):
        z = generator.randn(shape, dtype=dtype)
    else:
        z = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=generator.device if generator is not None else device)
    return z.to(device) if device is not None else z
