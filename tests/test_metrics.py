"""Evaluation metrics on inputs with known answers."""
import math

import numpy as np
import pytest
import torch

from t2i.eval.metrics import (
    bootstrap_mean_interval,
    clip_score,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    pixel_features16,
    r_precision,
)


def _closed_form_diagonal(mu1, var1, mu2, var2) -> float:
    """FD of two Gaussians with diagonal covariances: ‖Δμ‖² + Σ (√a − √b)²."""
    return float(((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum())


def test_frechet_distance_of_exact_gaussians_matches_the_closed_form() -> None:
    f64 = dict(dtype=torch.float64)
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0], **f64), torch.tensor([0.5, 1.0, 1.0], **f64)
    var1, var2 = torch.tensor([1.0, 4.0, 0.25], **f64), torch.tensor([2.0, 1.0, 0.25], **f64)
    expected = _closed_form_diagonal(mu1, var1, mu2, var2)
    assert frechet_distance_from_stats(mu1, torch.diag(var1), mu2, torch.diag(var2)) == pytest.approx(expected, rel=1e-10)
    # The same pair turned by one rotation: full covariances, the same distance.
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    rot = lambda v: q @ torch.diag(v) @ q.t()  # noqa: E731
    assert frechet_distance_from_stats(q @ mu1, rot(var1), q @ mu2, rot(var2)) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance_from_stats(mu1, rot(var1), mu1, rot(var1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_samples_converges_to_the_closed_form() -> None:
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    sd1, sd2 = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])
    a = mu1 + sd1 * torch.randn(200_000, 2, generator=g)
    b = mu2 + sd2 * torch.randn(200_000, 2, generator=g)
    expected = _closed_form_diagonal(mu1, sd1**2, mu2, sd2**2)  # 1 + 4 + 1 + 4 = 10
    assert expected == pytest.approx(10.0)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    assert frechet_distance(a[:100_000], a[100_000:]) < 0.01  # same distribution: near 0


def test_gaussian_stats_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(torch.zeros(1, 3))


def test_r_precision_of_perfect_embeddings_is_one_and_of_swapped_ones_zero() -> None:
    captions = torch.nn.functional.normalize(torch.randn(150, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    ids = torch.arange(150)
    assert r_precision(captions, ids, captions) == 1.0
    assert r_precision(captions, ids.roll(1), captions) == 0.0  # each image's "true" caption is another's
    # Random images against 99 distractors: about 1 in 100.
    noise = torch.randn(2000, 32, generator=torch.Generator().manual_seed(1))
    assert r_precision(noise, torch.randint(0, 150, (2000,), generator=torch.Generator().manual_seed(2)), captions) < 0.03


def test_r_precision_uses_every_other_caption_when_there_are_few() -> None:
    captions = torch.eye(3)
    images = torch.tensor([[1.0, 0.9, 0.0]])  # closer to caption 0 than to 1, far from 2
    assert r_precision(images, torch.tensor([0]), captions) == 1.0
    assert r_precision(images, torch.tensor([1]), captions) == 0.0


def test_clip_score_is_the_mean_cosine() -> None:
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    assert clip_score(x, 3 * x) == pytest.approx(1.0)
    assert clip_score(x, -x) == pytest.approx(-1.0)
    a, b = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert clip_score(a, b) == pytest.approx((math.sqrt(0.5) + 0.0) / 2)


def test_pixel_features_are_area_means_at_16() -> None:
    image = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    image[0, :4, :4] = 255  # exactly the top-left 4×4 block: one feature pixel
    f = pixel_features16(image).view(3, 16, 16)
    assert f[:, 0, 0].tolist() == [1.0, 1.0, 1.0] and float(f.sum()) == 3.0


def test_bootstrap_interval_of_a_mean_has_the_width_of_its_standard_error() -> None:
    assert bootstrap_mean_interval(np.full(32, -0.25)) == (-0.25, -0.25)  # nothing varies: no width
    # 32 prompts' gaps of +1 or -1 in equal numbers: mean 0, standard error 1/sqrt(32) = 0.177,
    # so a 95% interval of about ±1.96 * 0.177 = ±0.35
    lo, hi = bootstrap_mean_interval(np.array([1.0, -1.0] * 16))
    assert lo < 0 < hi and hi - lo == pytest.approx(2 * 1.96 / math.sqrt(32), rel=0.1)
    assert bootstrap_mean_interval(np.array([1.0, -1.0] * 16)) == (lo, hi)  # a fixed seed: repeatable
    wide, narrow = bootstrap_mean_interval(np.array([1.0, -1.0] * 16), level=0.99), bootstrap_mean_interval(np.array([1.0, -1.0] * 16), level=0.5)
    assert wide[1] - wide[0] > hi - lo > narrow[1] - narrow[0]
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean_interval(np.ones(3), level=1.0)
    with pytest.raises(ValueError, match="no values"):
        bootstrap_mean_interval(np.array([]))
