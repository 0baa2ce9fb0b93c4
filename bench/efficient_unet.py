"""Imagen's Efficient U-Net against today's UNet at (nearly) equal parameters, side by side.

All are the imagen-base UNet of a preset (default imagen-shapes); the efficient ones change
only the three options of the paper's appendix B.1 (UNetConfig.level_res_blocks, scale_skips,
downsample_first). Measured in one process, interleaved, so that the machine's drift hits both:
parameters, training images/s (forward, v-loss, backward, AdamW step) and sampling s/image (one
guided denoiser evaluation per step, two batch rows per image). Speeds are reported as ratios.

    python bench/efficient_unet.py --threads 2 --rounds 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from t2i.diffusion.config import DiffusionConfig
from t2i.models.unet import UNet, UNetConfig
from t2i.train.build import read_preset

# Today's is (2, 2, 2) blocks per level. Moving one high-resolution block down keeps the
# parameters within 3% (1, 2, 2 has one block less); (1, 2, 3) adds one at the lowest level (+11%).
VARIANTS = {"efficient-122": {"level_res_blocks": [1, 2, 2], "scale_skips": True, "downsample_first": True},
            "efficient-123": {"level_res_blocks": [1, 2, 3], "scale_skips": True, "downsample_first": True}}


def _inputs(batch: int, tokens: int = 12):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 3, 32, 32, generator=g), torch.randn(batch, tokens, 384, generator=g), torch.ones(batch, tokens, dtype=torch.bool))


def train_step_seconds(model: UNet, optimizer, batch: int) -> float:
    diffusion = DiffusionConfig(objective="v").build()
    x0, tokens, mask = _inputs(batch)
    start = time.perf_counter()
    loss = diffusion.loss(lambda x, t: model(x, t, tokens=tokens, token_mask=mask), x0, generator=torch.Generator().manual_seed(1)).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def sample_step_seconds(model: UNet, images: int) -> float:
    x, tokens, mask = _inputs(2 * images)  # conditional and null rows, as guidance runs them
    t = torch.full((2 * images,), 500)
    start = time.perf_counter()
    model(x, t, tokens=tokens, token_mask=mask)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="imagen-shapes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = read_preset(args.preset)["imagen-base"]["model"]
    configs = {"today": base, **{name: {**base, **extra} for name, extra in VARIANTS.items()}}
    models = {}
    for name, cfg in configs.items():
        torch.manual_seed(0)
        model = UNet(UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}))
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))
    times = {name: {"train": [], "sample": []} for name in models}
    for _ in range(args.rounds + 1):  # the first round warms up and is dropped
        for name, (model, opt) in models.items():
            model.train()
            times[name]["train"].append(train_step_seconds(model, opt, args.batch))
            model.eval()
            times[name]["sample"].append(sample_step_seconds(model, 8))
    out = {}
    for name, (model, _) in models.items():
        train, sample = statistics.median(times[name]["train"][1:]), statistics.median(times[name]["sample"][1:])
        out[name] = {"params": sum(p.numel() for p in model.parameters()), "train_images_per_s": args.batch / train, "sample_s_per_image_per_step": sample / 8}
    ratios = {f"{name} / today": {k: out[name][k] / out["today"][k] for k in ("params", "train_images_per_s", "sample_s_per_image_per_step")} for name in VARIANTS}
    print(json.dumps({"threads": args.threads, "rounds": args.rounds, "batch": args.batch, "variants": VARIANTS, **out, **ratios}, indent=2))


if __name__ == "__main__":
    main()
