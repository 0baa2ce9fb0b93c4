"""The one in-memory form every dataset takes: images with their captions."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ImageCaptionSet:
    """N images, each with one or more true captions.

    images:   uint8 array (N, H, W, 3), RGB, square.
    captions: N lists of strings; training draws one of an image's captions at random.
    groups:   optional (N,) int array; images sharing a group (e.g. skin-tone variants of
              one emoji) are the same subject, which evaluation and splits respect.
    """

    images: np.ndarray
    captions: list[list[str]]
    groups: np.ndarray | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if len(self.captions) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.captions)} caption lists")
        if any(len(c) == 0 for c in self.captions):
            raise ValueError("every image needs at least one caption")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> int:
        return int(self.images.shape[1])

    def subset(self, index: np.ndarray | list[int]) -> ImageCaptionSet:
        index = np.asarray(index, dtype=np.int64)
        return ImageCaptionSet(
            images=self.images[index],
            captions=[self.captions[i] for i in index],
            groups=None if self.groups is None else self.groups[index],
            names=[self.names[i] for i in index] if self.names else [],
        )

    def resized(self, size: int) -> ImageCaptionSet:
        """The same set at another side length (area downsampling, bicubic upsampling)."""
        if size == self.size:
            return self
        return ImageCaptionSet(resize_uint8(self.images, size), self.captions, self.groups, self.names)


def resize_uint8(images: np.ndarray, size: int, batch: int = 512) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) images to (N, size, size, 3); area filter when shrinking."""
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).permute(0, 3, 1, 2).float()
        mode = "area" if size < x.shape[-1] else "bicubic"
        y = F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))
        out.append(y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out) if out else images[:0]


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
