"""The few-step solvers against diffusers' schedulers of the same names, on the exact denoiser of
Gaussian data: same timesteps and noise levels, same trajectories to 1e-5; convergence to the
exact ODE solution; the λ clipping that keeps a cosine schedule's samples finite."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from t2i.diffusion.gaussian import GaussianDiffusion
from t2i.diffusion.samplers import sample
from t2i.diffusion.solvers import LAMBDA_MIN, SOLVERS, dpmpp_2m_sample, euler_ancestral_sample, noise_levels, unipc_sample

diffusers = pytest.importorskip("diffusers")

MU, S = 0.3, 0.5  # the data: x0 ~ N(MU, S²) in every coordinate
T = 1000


def exact_x0(alpha: torch.Tensor | float, sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """E[x0 | x] for x = alpha x0 + sigma eps."""
    return MU + alpha * S**2 / (alpha**2 * S**2 + sigma**2) * (x - alpha * MU)


def denoiser(alphas_cumprod: torch.Tensor):
    def denoise(x, t):
        ab = alphas_cumprod.double()[t].to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        return exact_x0(ab.sqrt(), (1 - ab).sqrt(), x)

    return denoise


def scheduler(kind: str, schedule: str, **config):
    betas = GaussianDiffusion(schedule=schedule, num_steps=T).betas.float().numpy()
    cls = {"dpm": diffusers.DPMSolverMultistepScheduler, "unipc": diffusers.UniPCMultistepScheduler,
           "euler-a": diffusers.EulerAncestralDiscreteScheduler}[kind]
    return cls(num_train_timesteps=T, trained_betas=betas, **config)


def x_T(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("schedule", "spacing", "config"), [
    ("cosine", "uniform", {"lambda_min_clipped": LAMBDA_MIN}),
    ("linear", "uniform", {}),
    ("linear", "trailing", {"timestep_spacing": "trailing"}),
    ("linear", "karras", {"use_karras_sigmas": True}),
])
def test_timesteps_and_levels_are_those_of_diffusers(schedule, spacing, config) -> None:
    ref = scheduler("dpm", schedule, **config)
    ref.set_timesteps(10)
    timesteps, levels = noise_levels(ref.alphas_cumprod, 10, spacing)
    assert timesteps == ref.timesteps.tolist()
    assert np.allclose(levels, ref.sigmas.numpy(), rtol=1e-5, atol=0)


def _run_reference(ref, timesteps, levels, start, model, generator=None):
    """diffusers' own loop over our timesteps and levels."""
    ref.set_timesteps(len(timesteps))
    ref.timesteps = torch.tensor(timesteps, dtype=ref.timesteps.dtype)
    ref.sigmas = torch.tensor(levels, dtype=torch.float32)
    ref._step_index, ref._begin_index = None, None
    x, kw = start, ({"generator": generator} if generator is not None else {})
    for t in ref.timesteps:
        x = ref.step(model(ref.scale_model_input(x, t), t), t, x, **kw).prev_sample
    return x


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("spacing", ["uniform", "karras"])
@pytest.mark.parametrize("name", ["dpmpp-2m", "dpmpp-2m-sde", "unipc", "euler-a"])
def test_each_solver_follows_its_diffusers_scheduler(name, spacing, schedule) -> None:
    config = {"dpmpp-2m": ("dpm", {"algorithm_type": "dpmsolver++", "solver_order": 2, "prediction_type": "sample"}),
              "dpmpp-2m-sde": ("dpm", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "prediction_type": "sample"}),
              "unipc": ("unipc", {"solver_order": 2, "solver_type": "bh2", "prediction_type": "sample"}),
              "euler-a": ("euler-a", {"prediction_type": "epsilon"})}[name]
    ref = scheduler(config[0], schedule, **config[1])
    ac = ref.alphas_cumprod
    timesteps, levels = noise_levels(ac, 8, spacing)
    denoise = denoiser(ac)
    start = x_T()
    ours = SOLVERS[name](denoise, start, timesteps, ac, levels=levels, generator=torch.Generator().manual_seed(5))

    def model(x, t):  # the same exact denoiser, in what each scheduler expects
        x0 = denoise(x, torch.full((len(x),), int(t)))
        if name == "euler-a":  # epsilon, at the step's own level (Karras levels are not their timestep's)
            level = levels[timesteps.index(int(t))]
            alpha = (level**2 + 1) ** -0.5
            return (x - alpha * x0) / (level * alpha)
        return x0

    ref_start = start * (levels[0] ** 2 + 1) ** 0.5 if name == "euler-a" else start  # Euler works on x/α
    theirs = _run_reference(ref, timesteps, levels, ref_start, model, generator=None if name == "unipc" else torch.Generator().manual_seed(5))
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5), (ours - theirs).abs().max()


def exact_ode_solution(x: torch.Tensor, level: float) -> torch.Tensor:
    """The probability-flow ODE from level `level` (variance-preserving x) to 0, in closed form:
    each coordinate keeps its standard score, (x/α - MU)/sqrt(S² + s²) = (x0 - MU)/S."""
    alpha = 1 / (level**2 + 1) ** 0.5
    return MU + (x / alpha - MU) * S / (S**2 + level**2) ** 0.5


@pytest.mark.parametrize("solver", [dpmpp_2m_sample, unipc_sample])
def test_the_ode_solvers_converge_to_the_exact_solution(solver) -> None:
    ac = GaussianDiffusion(schedule="linear", num_steps=T).alphas_cumprod
    start = x_T(1)
    errors = []
    for steps in (5, 10, 20, 40):
        timesteps, levels = noise_levels(ac, steps, "uniform")
        out = solver(denoiser(ac), start, timesteps, ac, levels=levels)
        errors.append(float((out - exact_ode_solution(start, levels[0])).abs().max()))
    assert errors[-1] < 0.02 and all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[1] / errors[2] > 3  # second order: about 4x less error per doubling


def test_euler_ancestral_draws_the_data_distribution() -> None:
    ac = GaussianDiffusion(schedule="linear", num_steps=T).alphas_cumprod
    start = torch.randn(20000, 1, generator=torch.Generator().manual_seed(2))
    stds = []
    for steps in (50, 200):  # first order: the spread closes in on the data's as steps grow
        timesteps, levels = noise_levels(ac, steps, "uniform")
        out = euler_ancestral_sample(denoiser(ac), start, timesteps, ac, levels=levels, generator=torch.Generator().manual_seed(3))
        assert abs(float(out.mean()) - MU) < 0.02
        stds.append(float(out.std()))
    assert abs(stds[1] - S) < 0.03 and abs(stds[1] - S) < abs(stds[0] - S), stds


def test_lambda_clipping_keeps_a_cosine_schedule_finite_and_right() -> None:
    """A network predicting noise is never exact; x0 = (x - σ ε)/α multiplies its error by σ/α,
    about 20,000 at a cosine schedule's last timestep (λ = -9.9) and 160 at λ = -5.1."""
    ac = GaussianDiffusion(schedule="cosine", num_steps=T).alphas_cumprod
    exact = denoiser(ac)

    def eps_model(x, t):  # an exact denoiser seen through a 0.3% error in predicted noise
        ab = ac.double()[t].to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
        eps = (x - ab.sqrt() * exact(x, t)) / (1 - ab).sqrt()
        return (x - (1 - ab).sqrt() * 1.003 * eps) / ab.sqrt()

    start = torch.randn(20000, 1, generator=torch.Generator().manual_seed(4))
    clipped = sample("dpmpp-2m", eps_model, start, num_train_steps=T, steps=20, alphas_cumprod=ac)
    assert torch.isfinite(clipped).all() and abs(float(clipped.mean()) - MU) < 0.02 and abs(float(clipped.std()) - S) < 0.05, (clipped.mean(), clipped.std())
    timesteps, levels = noise_levels(ac, 20, "uniform", lambda_min=None)  # from λ of about -10
    unclipped = dpmpp_2m_sample(eps_model, start, timesteps, ac, levels=levels)
    assert not abs(float(unclipped.std()) - S) < 0.5, unclipped.std()  # the noise's error swamps the data


def test_every_sampler_and_spacing_runs_through_sample_and_a_bad_name_is_refused() -> None:
    from t2i.errors import InputError

    ac = GaussianDiffusion(schedule="cosine", num_steps=100).alphas_cumprod
    for name in ("ddim", "ddpm", *SOLVERS):
        for spacing in ("uniform", "trailing", "karras"):
            if name in ("ddim", "ddpm") and spacing == "karras":
                with pytest.raises(InputError, match="karras spacing sets noise levels"):
                    sample(name, denoiser(ac), x_T(), num_train_steps=100, steps=6, alphas_cumprod=ac, spacing=spacing)
                continue
            out = sample(name, denoiser(ac), x_T(), num_train_steps=100, steps=6, alphas_cumprod=ac, spacing=spacing, generator=torch.Generator().manual_seed(0))
            assert torch.isfinite(out).all() and out.shape == x_T().shape
    with pytest.raises(InputError, match="sampler must be one of ddpm, ddim, dpmpp-2m"):
        sample("dpm++", denoiser(ac), x_T(), num_train_steps=100, steps=6, alphas_cumprod=ac)


def test_every_sampler_is_an_option_and_works_from_the_cli(tiny_imagen, tmp_path, capsys) -> None:
    from t2i.cli import main
    from t2i.diffusion.samplers import ALL_SAMPLERS
    from t2i.pipelines.options import SAMPLERS, SPACINGS

    assert set(SAMPLERS) == set(ALL_SAMPLERS) and SPACINGS == ("uniform", "trailing", "karras")
    model = ["--model", str(tiny_imagen.pipeline), "--base-steps", "4", "--sr-steps", "3"]
    for name, spacing in (("dpmpp-2m", "karras"), ("unipc", "uniform"), ("euler-a", "trailing"), ("dpmpp-2m-sde", "karras")):
        out = tmp_path / f"{name}.png"
        assert main(["generate", "a red apple", *model, "--sampler", name, "--spacing", spacing, "-o", str(out)]) == 0 and out.is_file()
    # a stage's own sampler: the base on DPM-Solver++, the super-resolution UNet on DDPM
    from PIL import Image

    def generate(*flags: str) -> np.ndarray:
        out = tmp_path / f"stage-{len(flags)}.png"
        assert main(["generate", "a red apple", *model, *flags, "-o", str(out)]) == 0
        return np.asarray(Image.open(out))

    assert not np.array_equal(generate("--sampler", "dpmpp-2m"), generate("--sampler", "dpmpp-2m", "--sr-sampler", "ddpm"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse's own one-line error
        main(["generate", "a red apple", *model, "--sampler", "dpm++", "-o", str(tmp_path / "x.png")])
    assert exited.value.code == 2 and "invalid choice: 'dpm++'" in capsys.readouterr().err
    assert main(["generate", "a red apple", *model, "--sampler", "ddim", "--spacing", "karras", "-o", str(tmp_path / "y.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "karras spacing sets noise levels, which ddim does not walk" in err
