"""Image–text alignment and distribution metrics on embeddings and pixels.

All functions take plain tensors so they can be checked on inputs with known answers:
the Fréchet distance of two Gaussians against its closed form, R-precision of perfect
embeddings = 1, CLIP score of identical unit vectors = 1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """(N, D) features -> mean (D,) and unbiased covariance (D, D), float64."""
    x = torch.as_tensor(features).to(torch.float64).flatten(1)
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(x)}")
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.t() @ centred / (len(x) - 1)


def _sqrtm_psd(a: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = torch.linalg.eigh((a + a.t()) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.t()


def frechet_distance_from_stats(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½): the 2-Wasserstein distance² of two Gaussians.

    The symmetric form Σ1^½ Σ2 Σ1^½ has the same eigenvalues as Σ1 Σ2 but stays symmetric, so an
    eigendecomposition gives its square root without the complex parts scipy's sqrtm can leave.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, cov1, cov2))
    root1 = _sqrtm_psd(cov1)
    cross = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp(min=0).sqrt().sum()
    fd = (mu1 - mu2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross
    return max(float(fd), 0.0)


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of (N, D) features."""
    return frechet_distance_from_stats(*gaussian_stats(features_a), *gaussian_stats(features_b))


def _as_float(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1], via a float copy: the images may be a
    read-only memory map, which torch.from_numpy would warn about."""
    return torch.from_numpy(np.array(images, dtype=np.float32)).permute(0, 3, 1, 2) / 255.0


def pixel_features16(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W, 3) -> (N, 768) in [0, 1]: area-downsampled to 16×16 and flattened.

    A model-independent feature space for a pixel Fréchet distance."""
    x = _as_float(images)
    return F.interpolate(x, size=(16, 16), mode="area").flatten(1)


def patch_features(images: np.ndarray, patch: int = 8) -> Tensor:
    """uint8 (N, H, W, 3) -> (N * (H/patch) * (W/patch), 3 * patch^2) in [0, 1]: every
    non-overlapping patch at full resolution. Their Fréchet distance sees fine detail (edges,
    blur, noise) that a distance over downsampled images cannot: an upsampler's job."""
    x = _as_float(images)
    return F.unfold(x, kernel_size=patch, stride=patch).transpose(1, 2).reshape(-1, 3 * patch * patch)


def high_frequency_energy(images: np.ndarray) -> float:
    """The mean fraction of each image's spectral power (grey levels, mean removed) above half the
    Nyquist frequency: 0 for a smooth image; bicubic resizing has almost none."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().mean(-1) / 255.0
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2
    fy, fx = torch.fft.fftfreq(x.shape[1]), torch.fft.fftfreq(x.shape[2])
    high = (fy[:, None].abs().maximum(fx[None, :].abs()) > 0.25).float()  # 0.5 cycles/pixel is Nyquist
    return float(((power * high).sum(dim=(1, 2)) / power.sum(dim=(1, 2)).clamp(min=1e-12)).mean())


def clip_score(image_embeds: Tensor, text_embeds: Tensor) -> float:
    """Mean cosine between paired rows of (N, E) image and text embeddings."""
    if image_embeds.shape != text_embeds.shape:
        raise ValueError(f"embedding shapes differ: {tuple(image_embeds.shape)} vs {tuple(text_embeds.shape)}")
    return float(F.cosine_similarity(image_embeds.double(), text_embeds.double(), dim=-1).mean())


def r_precision(image_embeds: Tensor, caption_ids: Tensor, caption_embeds: Tensor, *, distractors: int = 99, seed: int = 0) -> float:
    """Fraction of images whose true caption ranks first among itself and `distractors` others.

    image_embeds (N, E); caption_ids (N,) index each image's true caption in caption_embeds (C, E).
    The distractors of each image are drawn without replacement from the other C − 1 captions
    (all of them when fewer), by a generator seeded with `seed`. Ties count against the image.
    """
    n, c = len(image_embeds), len(caption_embeds)
    if len(caption_ids) != n:
        raise ValueError("caption_ids must give one caption per image")
    if c < 2:
        raise ValueError("R-precision needs at least 2 captions")
    k = min(distractors, c - 1)
    rng = np.random.default_rng(seed)
    ids = torch.as_tensor(caption_ids).long()
    img = F.normalize(image_embeds.double(), dim=-1)
    cap = F.normalize(caption_embeds.double(), dim=-1)
    hits = 0
    for i in range(n):
        true = int(ids[i])
        others = rng.choice(c - 1, size=k, replace=False)
        others = torch.from_numpy(others + (others >= true))  # skip the true caption
        sims = cap[others] @ img[i]
        hits += int(bool((cap[true] @ img[i] > sims).all()))
    return hits / n


def bootstrap_mean_interval(values: np.ndarray, *, level: float = 0.95, draws: int = 4000, seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (one per prompt: say a paraphrase's
    pass rate minus its canonical prompt's), resampling prompts with replacement. It says how far
    a mean over this many prompts moves with the prompts drawn; a fixed seed makes it repeatable."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(x) == 0:
        raise ValueError("no values to bootstrap")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    means = x[np.random.default_rng(seed).integers(0, len(x), (draws, len(x)))].mean(axis=1)
    tail = (1.0 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
