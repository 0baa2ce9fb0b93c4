"""Tests for the Gaussian diffusion core: schedules, forward process, samplers, guidance."""
from __future__ import annotations

import math

import pytest
import torch

from t2i.diffusion.gaussian import GaussianDiffusion, beta_schedule
from t2i.diffusion.guidance import chained_guidance, dynamic_threshold, guided_denoiser, static_threshold, thresholded
from t2i.diffusion.samplers import SAMPLERS, ddim_sample, ddpm_sample, respace, sample

torch.set_num_threads(1)

MU, SIGMA = 0.3, 0.5  # 1-D Gaussian data distribution for the Bayes checks
N = 20_000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_denoiser(alphas_cumprod: torch.Tensor):
    """The exact E[x0 | x_t] when x0 ~ N(MU, SIGMA²): a linear function of x_t."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = alphas_cumprod[t].to(x).reshape(-1, *([1] * (x.ndim - 1)))
        gain = ab.sqrt() * SIGMA ** 2 / (ab * SIGMA ** 2 + 1 - ab)
        return MU + gain * (x - ab.sqrt() * MU)

    return denoise


def recording(denoise, seen: list):
    """A denoiser that also records every x it is called with (to read intermediate states)."""

    def wrapped(x, t):
        seen.append(x.clone())
        return denoise(x, t)

    return wrapped


# ------------------------------------------------------------------ schedules
def test_cosine_schedule_matches_closed_form():
    T, s = 1000, 0.008
    betas = beta_schedule("cosine", T)
    assert betas.dtype == torch.float64 and betas.shape == (T,)
    assert float(betas.max()) == pytest.approx(0.999)  # clipped at the very end
    ac = torch.cumprod(1 - betas, 0)
    f = lambda i: math.cos((i / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    unclipped = int((betas < 0.999).to(torch.int64).argmin())  # first clipped index
    assert unclipped > 990
    for t in [0, 1, 10, 250, 500, 900, unclipped - 1]:
        assert float(ac[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-10)
    assert GaussianDiffusion(schedule="cosine").alphas_cumprod.equal(ac)


def test_linear_schedule_endpoints():
    b = beta_schedule("linear", 1000)
    assert float(b[0]) == pytest.approx(1e-4) and float(b[-1]) == pytest.approx(0.02)
    b = beta_schedule("linear", 250)  # scaled by 1000 / T
    assert float(b[0]) == pytest.approx(4e-4) and float(b[-1]) == pytest.approx(0.08)
    assert torch.allclose(b.diff(), b.diff()[0].expand(249))  # evenly spaced


@pytest.mark.parametrize("kwargs", [dict(kind="quadratic", num_steps=10), dict(kind="linear", num_steps=0)])
def test_beta_schedule_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        beta_schedule(**kwargs)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="objective"):
        GaussianDiffusion(objective="score")
    with pytest.raises(ValueError, match="schedule"):
        GaussianDiffusion(schedule="sigmoid")


# ------------------------------------------------------------ forward process
def test_q_sample_marginal_moments():
    d = GaussianDiffusion(schedule="linear", num_steps=1000)
    x0 = torch.tensor([[-0.8, 0.1, 0.9]]).expand(50_000, 3)
    for step in [10, 400, 900]:
        t = torch.full((x0.shape[0],), step)
        xt = d.q_sample(x0, t, torch.randn(x0.shape, generator=gen(step)))
        ab = float(d.alphas_cumprod[step])
        assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.015)
        assert torch.allclose(xt.var(0), torch.full((3,), 1 - ab), rtol=0.03)


def test_q_posterior_matches_closed_form():
    d = GaussianDiffusion(schedule="cosine", num_steps=100)
    ac, betas = d.alphas_cumprod, d.betas
    x0 = torch.randn(4, 2, generator=gen(0), dtype=torch.float64)
    xt = torch.randn(4, 2, generator=gen(1), dtype=torch.float64)
    t = torch.tensor([1, 5, 50, 99])
    mean, var, log_var = d.q_posterior(x0, xt, t)
    # Product of Gaussians: q(x_{t-1} | x0) = N(√ᾱ_{t-1} x0, 1 - ᾱ_{t-1}), q(x_t | x_{t-1}) = N(√α_t x, β_t).
    ab_prev, b = ac[t - 1][:, None], betas[t][:, None]
    precision = 1 / (1 - ab_prev) + (1 - b) / b
    expected_mean = (ab_prev.sqrt() * x0 / (1 - ab_prev) + (1 - b).sqrt() * xt / b) / precision
    assert torch.allclose(mean, expected_mean, rtol=1e-9)
    assert torch.allclose(var, 1 / precision, rtol=1e-9)
    assert torch.allclose(var, b * (1 - ab_prev) / (1 - ac[t][:, None]), rtol=1e-12)
    assert torch.allclose(log_var, var.log())
    # At t = 0 the posterior is a point mass at x0; the clipped log variance stays finite.
    mean0, var0, log_var0 = d.q_posterior(x0, xt, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(mean0, x0) and float(var0.abs().max()) == 0.0
    assert torch.allclose(log_var0, d.posterior_variance[1].log().expand(4, 1))


def test_results_follow_input_dtype_and_shape():
    d = GaussianDiffusion(num_steps=10)
    x = torch.ones(2, 3, 4, 4, dtype=torch.float32)
    t = torch.tensor([0, 9])
    assert d.q_sample(x, t, x).dtype == torch.float32
    assert d.q_posterior(x, x, t)[1].shape == (2, 1, 1, 1)
    assert d.snr(t).shape == (2,)
    with pytest.raises(ValueError, match="shape"):
        d.q_sample(x, torch.tensor([0, 1, 2]), x)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        d.q_sample(x, torch.tensor([0, 10]), x)


# ----------------------------------------------------------------- objectives
@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_to_x0_inverts_training_target(objective):
    d = GaussianDiffusion(num_steps=1000, objective=objective)
    x0 = torch.randn(5, 3, 2, generator=gen(2), dtype=torch.float64)
    noise = torch.randn(5, 3, 2, generator=gen(3), dtype=torch.float64)
    t = torch.tensor([0, 1, 300, 700, 999])
    xt = d.q_sample(x0, t, noise)
    target = d.training_target(x0, noise, t)
    assert torch.allclose(d.to_x0(target, xt, t), x0, atol=1e-6)
    assert torch.allclose(d.denoiser(lambda x, tt: target)(xt, t), x0, atol=1e-6)
    assert torch.allclose(d.eps_from_x0(x0, xt, t), noise, atol=1e-6)


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_loss_is_zero_for_a_perfect_model_and_reproducible(objective):
    d = GaussianDiffusion(num_steps=100, objective=objective)
    x0 = torch.randn(6, 2, 3, generator=gen(4))
    perfect = lambda x, t: d.training_target(x0, d.eps_from_x0(x0, x, t), t)  # noqa: E731
    assert float(d.loss(perfect, x0, generator=gen(5)).abs().max()) < 1e-5
    model = lambda x, t: x * 0.5  # noqa: E731
    a, b = d.loss(model, x0, generator=gen(6)), d.loss(model, x0, generator=gen(6))
    assert a.shape == (6,) and torch.equal(a, b)


def test_snr_and_min_snr_weights():
    d = GaussianDiffusion(num_steps=1000)
    t = torch.tensor([0, 100, 500, 999])
    ab = d.alphas_cumprod[t]
    snr = ab / (1 - ab)
    assert torch.allclose(d.snr(t).double(), snr, rtol=1e-6)
    clipped = snr.clamp(max=5.0)
    expected = {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}
    x0 = torch.zeros(4, 3, dtype=torch.float64)
    for objective, weight in expected.items():
        dd = GaussianDiffusion(num_steps=1000, objective=objective)
        off_by_one = lambda x, tt: dd.training_target(x0, torch.zeros_like(x0), tt) + 1  # noqa: E731
        loss = dd.loss(off_by_one, x0, t=t, noise=torch.zeros_like(x0), weighting="min_snr")
        assert torch.allclose(loss, weight, rtol=1e-9), objective
    with pytest.raises(ValueError, match="weighting"):
        d.loss(lambda x, tt: x, x0, t=t, weighting="p2")


def test_min_snr_loss_agrees_across_objectives():
    # The same x0 error, expressed in each objective, must cost min(snr, 5)·|x0 err|².
    x0 = torch.randn(4, 8, generator=gen(7), dtype=torch.float64)
    noise = torch.randn(4, 8, generator=gen(8), dtype=torch.float64)
    delta = torch.randn(4, 8, generator=gen(9), dtype=torch.float64)
    t = torch.tensor([3, 200, 600, 990])
    losses = []
    for objective in ["eps", "x0", "v"]:
        d = GaussianDiffusion(num_steps=1000, objective=objective)

        def model(x, tt):
            x0_hat = x0 + delta
            return d.training_target(x0_hat, d.eps_from_x0(x0_hat, x, tt), tt)

        losses.append(d.loss(model, x0, t=t, noise=noise, weighting="min_snr"))
    expected = d.snr(t).double().clamp(max=5.0) * delta.pow(2).mean(1)
    for loss in losses:
        assert torch.allclose(loss, expected, rtol=1e-5)


def test_sample_t_is_uniform_and_seeded():
    d = GaussianDiffusion(num_steps=10)
    t = d.sample_t(20_000, generator=gen(10))
    assert t.dtype == torch.long and int(t.min()) == 0 and int(t.max()) == 9
    assert torch.allclose(torch.bincount(t).double() / 20_000, torch.full((10,), 0.1, dtype=torch.float64), atol=0.01)
    assert torch.equal(t, d.sample_t(20_000, generator=gen(10)))


# ------------------------------------------------------------------- respacing
def test_respace_properties():
    assert respace(1000, 1000) == list(range(999, -1, -1))
    assert respace(1000, 1) == [999]
    assert respace(1000, 2) == [999, 0]
    for T, n in [(1000, 50), (1000, 999), (100, 7), (4000, 250)]:
        steps = respace(T, n)
        gaps = [a - b for a, b in zip(steps, steps[1:])]
        assert len(steps) == n and steps[0] == T - 1 and steps[-1] == 0
        assert min(gaps) >= 1 and max(gaps) - min(gaps) <= 1  # evenly spaced, descending
    for bad in [0, 1001]:
        with pytest.raises(ValueError):
            respace(1000, bad)


# ------------------------------------------------------ samplers (Bayes checks)
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("steps", [1000, 100])
def test_exact_denoiser_recovers_data_distribution(sampler, steps):
    d = GaussianDiffusion(schedule="cosine", num_steps=1000)
    x_T = torch.randn(N, 1, generator=gen(11), dtype=torch.float64)
    x0 = sample(sampler, gaussian_denoiser(d.alphas_cumprod), x_T, num_train_steps=1000, steps=steps,
                alphas_cumprod=d.alphas_cumprod, generator=gen(12))
    assert float(x0.mean()) == pytest.approx(MU, abs=0.015)
    # DDPM's fixed posterior variance under-disperses with few steps (analytically std 0.482
    # at 100 cosine steps, 0.498 at 1000), DDIM η=0 less so (0.492, 0.499).
    rel = 0.025 if steps == 1000 else {"ddpm": 0.05, "ddim": 0.03}[sampler]
    assert float(x0.std()) == pytest.approx(SIGMA, rel=rel)


def test_ddim_eta1_matches_ancestral_in_distribution():
    d = GaussianDiffusion(schedule="linear", num_steps=1000)
    steps, ac = respace(1000, 1000), d.alphas_cumprod
    denoise = gaussian_denoiser(ac)
    x_T = torch.randn(N, 1, generator=gen(13), dtype=torch.float64)
    a = ddpm_sample(denoise, x_T, steps, ac, generator=gen(14))
    b = ddim_sample(denoise, x_T, steps, ac, eta=1.0, generator=gen(15))
    assert float(a.mean()) == pytest.approx(float(b.mean()), abs=0.02)
    assert float(a.std()) == pytest.approx(float(b.std()), rel=0.03)


@pytest.mark.parametrize("t, s", [(500, 499), (500, 431), (999, 0)])
def test_single_step_transition_is_the_posterior(t, s):
    # Both samplers draw one randn(x.shape) per noisy step, so a seeded step equals
    # posterior_mean + posterior_std·z with z regenerated from the same seed.
    d = GaussianDiffusion(schedule="cosine", num_steps=1000)
    ac = d.alphas_cumprod
    denoise = gaussian_denoiser(ac)
    x_t = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    tb = torch.full((9,), t)
    x0_hat = denoise(x_t, tb)
    ab_t, ab_s = float(ac[t]), float(ac[s])
    beta = 1 - ab_t / ab_s
    mean = math.sqrt(ab_s) * beta / (1 - ab_t) * x0_hat + math.sqrt(1 - beta) * (1 - ab_s) / (1 - ab_t) * x_t
    std = math.sqrt(beta * (1 - ab_s) / (1 - ab_t))
    if s == t - 1:  # the full-schedule chain is the DDPM posterior itself
        p_mean, p_var, _ = d.q_posterior(x0_hat, x_t, tb)
        assert torch.allclose(mean, p_mean, rtol=1e-10) and math.isclose(std ** 2, float(p_var[0]), rel_tol=1e-10)
    z = torch.randn(9, 1, generator=gen(16), dtype=torch.float64)
    for run in [lambda f, g: ddpm_sample(f, x_t, [t, s], ac, generator=g),
                lambda f, g: ddim_sample(f, x_t, [t, s], ac, eta=1.0, generator=g)]:
        seen = []
        run(recording(denoise, seen), gen(16))
        assert torch.allclose(seen[1], mean + std * z, atol=1e-10)


def test_ddim_eta1_and_ddpm_agree_path_by_path_with_shared_noise():
    d = GaussianDiffusion(schedule="cosine", num_steps=1000)
    steps, ac = respace(1000, 40), d.alphas_cumprod
    denoise = gaussian_denoiser(ac)
    x_T = torch.randn(64, 1, generator=gen(17), dtype=torch.float64)
    a = ddpm_sample(denoise, x_T, steps, ac, generator=gen(18))
    b = ddim_sample(denoise, x_T, steps, ac, eta=1.0, generator=gen(18))
    assert torch.allclose(a, b, atol=1e-9)


# ------------------------------------------------------------ sampler purity
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_are_pure_and_report_progress(name):
    d = GaussianDiffusion(num_steps=100)
    denoise = gaussian_denoiser(d.alphas_cumprod)
    x_T = torch.randn(8, 2, 3, generator=gen(19))
    kw = dict(num_train_steps=100, steps=10, alphas_cumprod=d.alphas_cumprod)
    eta = 0.5 if name == "ddim" else 0.0
    calls = []
    a = sample(name, denoise, x_T, eta=eta, generator=gen(20), progress=lambda i, n: calls.append((i, n)), **kw)
    b = sample(name, denoise, x_T, eta=eta, generator=gen(20), **kw)
    c = sample(name, denoise, x_T, eta=eta, generator=gen(21), **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert calls == [(i, 10) for i in range(1, 11)]
    assert x_T.equal(torch.randn(8, 2, 3, generator=gen(19)))  # input untouched
    direct = SAMPLERS[name](denoise, x_T, respace(100, 10), d.alphas_cumprod, generator=gen(20),
                            **({"eta": eta} if name == "ddim" else {}))
    assert torch.equal(a, direct)


def test_ddim_eta0_is_deterministic_and_sampler_arguments_are_validated():
    d = GaussianDiffusion(num_steps=50)
    ac, denoise = d.alphas_cumprod, gaussian_denoiser(d.alphas_cumprod)
    x_T = torch.randn(4, 1, generator=gen(22))
    assert torch.equal(ddim_sample(denoise, x_T, [49, 20, 0], ac, generator=gen(1)),
                       ddim_sample(denoise, x_T, [49, 20, 0], ac, generator=gen(2)))
    with pytest.raises(ValueError, match="descending"):
        ddpm_sample(denoise, x_T, [0, 20, 49], ac)
    with pytest.raises(ValueError, match="lie in"):
        ddpm_sample(denoise, x_T, [50, 0], ac)
    with pytest.raises(ValueError, match="sampler"):
        sample("euler", denoise, x_T, num_train_steps=50, steps=5, alphas_cumprod=ac)
    with pytest.raises(ValueError, match="eta"):
        sample("ddpm", denoise, x_T, num_train_steps=50, steps=5, alphas_cumprod=ac, eta=0.5)
    with pytest.raises(ValueError, match="alphas_cumprod"):
        sample("ddim", denoise, x_T, num_train_steps=40, steps=5, alphas_cumprod=ac)


# -------------------------------------------------------------------- guidance
class CountingModel:
    """denoise_with_cond whose output is x + emb (so cond and null give distinct results)."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x, t, *, emb, mask):
        assert mask is None
        self.batches.append(x.shape[0])
        return x + emb


def test_guidance_scales_and_batched_calls():
    x, t = torch.zeros(3, 2), torch.tensor([5, 5, 5])
    cond = {"emb": torch.full((3, 2), 2.0), "mask": None}
    null = {"emb": torch.full((3, 2), 0.5), "mask": None}
    model = CountingModel()
    assert torch.equal(guided_denoiser(model, cond, null, scale=1.0)(x, t), torch.full((3, 2), 2.0))
    assert model.batches == [3]  # only the conditional batch
    model.batches.clear()
    assert torch.equal(guided_denoiser(model, cond, null, scale=0.0)(x, t), torch.full((3, 2), 0.5))
    out = guided_denoiser(model, cond, null, scale=3.0)(x, t)
    assert torch.allclose(out, torch.full((3, 2), 0.5 + 3.0 * 1.5))
    assert model.batches == [6, 6]  # one call of 2B per evaluation


def test_chained_guidance_separate_scales():
    x, t = torch.zeros(3, 2), torch.tensor([5, 5, 5])
    null, mid, full = ({"emb": torch.full((3, 2), v), "mask": None} for v in (0.5, 1.0, 3.0))
    model = CountingModel()
    out = chained_guidance(model, [null, mid, full], [2.0, 4.0])(x, t)
    assert torch.allclose(out, torch.full((3, 2), 0.5 + 2.0 * 0.5 + 4.0 * 2.0))
    assert model.batches == [9]  # three conditions, one call
    model.batches.clear()
    # equal scales telescope to plain guidance between the ends: the middle is never evaluated
    out = chained_guidance(model, [null, mid, full], [3.0, 3.0])(x, t)
    assert torch.equal(out, guided_denoiser(model, full, null, scale=3.0)(x, t))
    assert model.batches == [6, 6]
    model.batches.clear()
    assert torch.equal(chained_guidance(model, [null, mid, full], [1.0, 1.0])(x, t), full["emb"])
    assert model.batches == [3]
    with pytest.raises(ValueError, match="one scale per step"):
        chained_guidance(model, [null, full], [1.0, 2.0])


def test_guidance_validates_conditioning():
    model = CountingModel()
    x, t = torch.zeros(2, 1), torch.tensor([0, 0])
    with pytest.raises(ValueError, match="same keys"):
        guided_denoiser(model, {"emb": x}, {"mask": None}, scale=2.0)
    with pytest.raises(ValueError, match="both"):
        guided_denoiser(model, {"emb": x}, {"emb": None}, scale=2.0)
    with pytest.raises(ValueError, match="batch dim 2"):
        guided_denoiser(model, {"emb": torch.zeros(3, 1), "mask": None},
                        {"emb": torch.zeros(3, 1), "mask": None}, scale=2.0)(x, t)


def test_thresholds_on_known_values():
    x = torch.tensor([[-4.0, 0.0, 1.0, 2.0, 3.0], [0.5, -0.2, 0.1, 0.3, 0.9]])
    assert torch.equal(static_threshold(x)[0], torch.tensor([-1.0, 0.0, 1.0, 1.0, 1.0]))
    # |x| sorted is [0, 1, 2, 3, 4]: the 1.0 quantile is 4, the 0.5 quantile is 2.
    # The second row never exceeds 1, so s = 1 and it is left alone.
    out = dynamic_threshold(x, percentile=1.0)
    assert torch.allclose(out[0], torch.tensor([-1.0, 0.0, 0.25, 0.5, 0.75]))
    assert torch.equal(out[1], x[1])
    assert torch.allclose(dynamic_threshold(x, percentile=0.5)[0], torch.tensor([-1.0, 0.0, 0.5, 1.0, 1.0]))
    # Default 0.995 quantile of [0..4] interpolates to 3.98.
    assert torch.allclose(dynamic_threshold(x)[0], x[0].clamp(-3.98, 3.98) / 3.98)
    with pytest.raises(ValueError, match="percentile"):
        dynamic_threshold(x, percentile=0.0)


def test_thresholded_wraps_a_denoiser():
    def raw(x, t, **kw):
        return x * 3

    x, t = torch.tensor([[0.2, -0.5]]), torch.tensor([0])
    assert thresholded(raw, "none") is raw
    assert torch.allclose(thresholded(raw, "static")(x, t), torch.tensor([[0.6, -1.0]]))
    s = 0.6 + 0.995 * (1.5 - 0.6)  # the 0.995 quantile of |[0.6, -1.5]|
    assert torch.allclose(thresholded(raw, "dynamic")(x, t), torch.tensor([[0.6 / s, -1.0]]))
    with pytest.raises(ValueError, match="threshold kind"):
        thresholded(raw, "soft")


def test_expert_denoisers_take_the_steps_of_their_range():
    from t2i.diffusion.experts import expert_denoiser

    calls = []

    def constant(value):
        def denoise(x, t):
            calls.append(value)
            return torch.full_like(x, value)
        return denoise

    denoise = expert_denoiser([(900, constant(2.0)), (0, constant(1.0)), (500, constant(3.0))])
    x = torch.zeros(3, 2)
    for step, want in ((0, 1.0), (499, 1.0), (500, 3.0), (899, 3.0), (900, 2.0), (999, 2.0)):
        calls.clear()
        assert torch.equal(denoise(x, torch.full((3,), step)), torch.full_like(x, want)) and calls == [want]  # one call when the rows agree
    mixed = denoise(x, torch.tensor([950, 10, 600]))
    assert mixed[:, 0].tolist() == [2.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="must cover step 0"):
        expert_denoiser([(900, constant(2.0))])
    with pytest.raises(ValueError, match="same step"):
        expert_denoiser([(0, constant(1.0)), (900, constant(2.0)), (900, constant(3.0))])
