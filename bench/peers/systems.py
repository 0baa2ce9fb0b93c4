"""One builder per system, each returning the same small adapter, so that speed and quality code
never branches on which library it measures.

Decoders (text-conditioned 32x32 image models) take a batch
    x (B, 3, 32, 32) in [-1, 1], tokens (B, T, 384) frozen MiniLM states (zero at padding),
    mask (B, T) bool, pooled (B, 384) MiniLM sentence embedding
and priors (text -> CLIP image embedding) take
    z (B, E) target embedding, text_embed (B, E), tokens (B, T, D), mask (B, T).

What each system receives, and how it trains and samples, is its library's own way:
- t2i: our UNet (space-to-depth 2x2, channels-last) at the size below, with the shipped shapes
  preset's diffusion, weighting, guidance dropout, sampler and thresholding (v objective,
  min-SNR-5, DDIM, through t2i.pipelines.sampling.run_decoder), read from the preset. Tokens by cross-attention; pooled MiniLM in
  the slot of the CLIP image embedding (time embedding + 4 context tokens).
- t2i-imagen: our Imagen base, the imagen-shapes preset's UNet at the size below (tokens by
  cross-attention with learned text positions, their masked mean added to the time embedding),
  diffusion, caption dropout, sampler and thresholding, sampled through
  t2i.pipelines.sampling.sample_unet as `t2i generate --model imagen-shapes` does. It reads the
  tokens alone, as imagen-pytorch does: the pair to compare for Imagen.
- imagen-pytorch: `Imagen` around its `Unet`; its continuous-time cosine schedule, eps
  objective, min-SNR-5, its own guidance dropout (10 %) and ancestral sampler with dynamic
  thresholding; the pooled vector is its own attention pooling of the tokens.
- dalle2-pytorch: `Decoder` around its `Unet`; its cosine schedule, eps objective with learned
  variance, DDIM when fewer steps than 1000. Pooled MiniLM in its image-embedding slot (its
  prior/CLIP stage is not trained here: see quality.py), tokens as its text encodings; its own
  dropout (image 10 %, text 50 %).
- diffusers: `UNet2DConditionModel` with DDPMScheduler (squaredcos_cap_v2, epsilon) for
  training and DDIMScheduler for sampling, guidance with the batch doubled as its pipelines
  do. Tokens by cross-attention (`encoder_attention_mask`), pooled by `class_embed_type=
  "projection"`; the harness drops both together 10 % of the time (zeros, mask off), which is
  also the unconditional branch at sampling.
Every system trains with the same AdamW (lr, betas (0.9, 0.99), no weight decay); peers' own
trainers (ImagenTrainer, DecoderTrainer) are not used, so the optimiser is not a variable.
Peers' text length is capped at 32 tokens (`max_text_len`), like ours; their default of 256
would pad every caption to 256 attention keys.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

DECODERS = ("t2i", "t2i-imagen", "imagen-pytorch", "dalle2-pytorch", "diffusers")
PRIORS = ("t2i-prior", "dalle2-pytorch-prior")
PEER_OF = {"imagen-pytorch": "imagen-pytorch", "dalle2-pytorch": "dalle2-pytorch", "diffusers": "diffusers",
           "dalle2-pytorch-prior": "dalle2-pytorch"}
TEXT_DIM = 384
MAX_TOKENS = 32

# Sizes: "full" puts every decoder at 5-7 M parameters (exact counts are printed); "tiny" is for
# the smoke run and the test. Priors: equal width and depth (and head width).
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "t2i": {"base_channels": 56, "channel_mults": [1, 2, 2], "attention_levels": [1, 2], "head_dim": 28, "context_dim": 192},
        "t2i-imagen": {"base_channels": 56, "channel_mults": [1, 2, 2], "attention_levels": [1, 2], "head_dim": 28, "context_dim": 192},
        "imagen-pytorch": {"dim": 56, "attn_heads": 4, "attn_dim_head": 32},
        "dalle2-pytorch": {"dim": 48, "attn_heads": 4, "attn_dim_head": 32},
        "diffusers": {"channels": 48, "heads": [2, 3, 3]},
        "prior": {"width": 192, "depth": 4, "heads": 3, "embed_dim": 128},
    },
    "tiny": {
        "t2i": {"base_channels": 16, "channel_mults": [1, 2], "attention_levels": [1], "head_dim": 16, "context_dim": 32},
        "t2i-imagen": {"base_channels": 16, "channel_mults": [1, 2], "attention_levels": [1], "head_dim": 16, "context_dim": 32},
        "imagen-pytorch": {"dim": 16, "attn_heads": 2, "attn_dim_head": 16},
        "dalle2-pytorch": {"dim": 16, "attn_heads": 2, "attn_dim_head": 16},
        "diffusers": {"channels": 16, "heads": [2, 2, 2]},
        "prior": {"width": 32, "depth": 1, "heads": 2, "embed_dim": 32},
    },
}
DROP_EMBED, DROP_TEXT, DROP_ALL = 0.1, 0.5, 0.1


@dataclass
class System:
    """A built system: the trainable module, its exact parameter count and three operations.

    loss(batch) -> scalar tensor: the system's own training loss (with its guidance dropout).
    sample(cond, steps, guidance, seed) -> (B, 3, 32, 32) images in [-1, 1] (decoders) or
        (B, E) embeddings (priors). `steps` sampling steps; with guidance != 1 each step costs
        `calls_per_step` network evaluations of batch B (or one of batch 2B), as the library does it.
    """

    name: str
    kind: str  # "decoder" or "prior"
    module: nn.Module
    network: nn.Module  # the denoising network alone, whose parameters are counted
    loss: Callable[[dict], torch.Tensor]
    sample: Callable[..., torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.network.parameters())

    def set_training(self, on: bool) -> None:
        self.module.train(on)
        self.network.train(on)  # see trainable(): the wrapper may no longer reach it

    def trainable(self) -> list[nn.Parameter]:
        # the network's, not the wrapper's: imagen-pytorch's Imagen turns its unet ModuleList into
        # a plain list on the first forward, after which Imagen.parameters() is empty
        return [p for p in self.network.parameters() if p.requires_grad]

    def optimizer(self, lr: float = 2e-4) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.trainable(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)


def build(name: str, size: str = "full", seed: int = 0) -> System:
    """Build system `name` (one of DECODERS + PRIORS) at `size` ("full" or "tiny")."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
    builders = {"t2i": _t2i, "t2i-imagen": _t2i_imagen, "imagen-pytorch": _imagen, "dalle2-pytorch": _dalle2, "diffusers": _diffusers,
                "t2i-prior": _t2i_prior, "dalle2-pytorch-prior": _dalle2_prior}
    if name not in builders:
        raise ValueError(f"unknown system {name!r} (known: {', '.join(builders)})")
    if name in PEER_OF:
        from workarounds import apply  # bench/peers is on sys.path in a worker

        apply()
    torch.manual_seed(seed)
    cfg = SIZES[size]["prior" if name.endswith("-prior") else name]
    return builders[name](dict(cfg))


def _keep(b: int, p: float) -> torch.Tensor:
    return torch.rand(b) >= p


# ---------------------------------------------------------------------------------------- t2i
def _shapes_preset() -> dict:
    """The shipped shapes preset: our side trains and samples as `t2i train` / `t2i generate` do."""
    from t2i.train.build import read_preset

    return read_preset("shapes")


def _preset_diffusion(section: dict) -> tuple[dict, str, object]:
    """A preset section's diffusion settings, its loss weighting, and the diffusion they make."""
    from t2i.diffusion.gaussian import GaussianDiffusion

    settings = {k: section["diffusion"][k] for k in ("schedule", "num_steps", "objective")}
    return settings, section["diffusion"].get("weighting", "none"), GaussianDiffusion(**settings)


def _t2i(cfg: dict) -> System:
    from t2i.checkpoint import Component, build_model
    from t2i.pipelines.sampling import run_decoder

    preset = _shapes_preset()
    dec, pipe = preset["decoder"], preset["pipeline"]
    model_cfg = {"image_size": 32, "patch_size": 2, "num_res_blocks": 2, "text_dim": TEXT_DIM, "embed_dim": TEXT_DIM, **cfg}
    model = build_model("unet", model_cfg)
    diffusion_cfg, weighting, diffusion = _preset_diffusion(dec)
    drop_embed, drop_text = dec.get("options", {}).get("drop_embed", DROP_EMBED), dec.get("options", {}).get("drop_text", DROP_TEXT)
    sampler, threshold = pipe.get("sampler", "ddim"), pipe.get("threshold", "dynamic")
    component = Component(model=model, role="decoder", settings={"diffusion": diffusion_cfg})

    def loss(batch):
        b = len(batch["x"])
        cond = {"embed": batch["pooled"], "embed_keep": _keep(b, drop_embed), "tokens": batch["tokens"],
                "token_mask": batch["mask"] & _keep(b, drop_text)[:, None]}
        return diffusion.loss(lambda x, t: model(x, t, **cond), batch["x"], weighting=weighting).mean()

    def sample(cond, steps, guidance, seed=0):
        g = torch.Generator().manual_seed(seed)
        return run_decoder(component, cond["pooled"], cond["tokens"], cond["mask"], steps=steps, guidance=guidance,
                           sampler=sampler, threshold=threshold, generator=g)

    config = {"model": model_cfg, "diffusion": {**diffusion_cfg, "weighting": weighting}, "drop_embed": drop_embed, "drop_text": drop_text,
              "sampler": sampler, "threshold": threshold}
    return System("t2i", "decoder", model, model, loss, sample, config,
                  f"UNet (2x2 space-to-depth, channels-last), {diffusion_cfg['schedule']} schedule, {diffusion_cfg['objective']} objective, "
                  f"{weighting} weighting, {sampler.upper()} with {threshold} thresholding (the shapes preset's); CFG in one call of batch 2B")


def _t2i_imagen(cfg: dict) -> System:
    from t2i.checkpoint import Component, build_model
    from t2i.pipelines.sampling import sample_unet, text_conditions
    from t2i.train.build import read_preset

    preset = read_preset("imagen-shapes")
    base, pipe = preset["imagen-base"], preset["pipeline"]
    model_cfg = {**base["model"], **cfg}
    model = build_model("unet", model_cfg)
    diffusion_cfg, weighting, diffusion = _preset_diffusion(base)
    drop_text = base.get("options", {}).get("drop_text", DROP_ALL)
    sampler, threshold = pipe.get("sampler", "ddim"), pipe.get("base_threshold", "static")
    component = Component(model=model, role="imagen-base", settings={"diffusion": diffusion_cfg})

    def loss(batch):
        mask = batch["mask"] & _keep(len(batch["x"]), drop_text)[:, None]
        return diffusion.loss(lambda x, t: model(x, t, tokens=batch["tokens"], token_mask=mask), batch["x"], weighting=weighting).mean()

    def sample(cond, steps, guidance, seed=0):
        g = torch.Generator().manual_seed(seed)
        text, null = text_conditions(cond["tokens"], cond["mask"])
        return sample_unet(component, text, null=null, guidance=guidance, steps=steps, sampler=sampler, threshold=threshold, generator=g)

    config = {"model": model_cfg, "diffusion": {**diffusion_cfg, "weighting": weighting}, "drop_text": drop_text, "sampler": sampler, "threshold": threshold}
    return System("t2i-imagen", "decoder", model, model, loss, sample, config,
                  f"Imagen base UNet (2x2 space-to-depth, channels-last; tokens by cross-attention, pooled tokens added to the time embedding), "
                  f"{diffusion_cfg['schedule']} schedule, {diffusion_cfg['objective']} objective, {weighting} weighting, {sampler.upper()} with "
                  f"{threshold} thresholding (the imagen-shapes preset's); CFG in one call of batch 2B")


def _t2i_prior(cfg: dict) -> System:
    from t2i.checkpoint import Component, build_model
    from t2i.unclip.sampling import run_prior

    preset = _shapes_preset()["prior"]
    e = cfg["embed_dim"]
    model_cfg = {"embed_dim": e, "text_dim": TEXT_DIM, "width": cfg["width"], "depth": cfg["depth"], "num_heads": cfg["heads"], "max_tokens": MAX_TOKENS}
    model = build_model("prior", model_cfg)
    diffusion_cfg, _, diffusion = _preset_diffusion(preset)
    drop_text = preset.get("options", {}).get("drop_text", 0.1)
    scale = math.sqrt(e)
    component = Component(model=model, role="prior", settings={"diffusion": diffusion_cfg, "embed_scale": scale})

    def loss(batch):
        b = len(batch["z"])
        cond = {"text_embed": batch["text_embed"], "tokens": batch["tokens"], "token_mask": batch["mask"], "keep": _keep(b, drop_text)}
        return diffusion.loss(lambda x, t: model(x, t, **cond), batch["z"] * scale).mean()

    def sample(cond, steps, guidance, seed=0):
        g = torch.Generator().manual_seed(seed)
        return run_prior(component, cond["text_embed"], cond["tokens"], cond["mask"], steps=steps, guidance=guidance, candidates=1, generator=g)

    return System("t2i-prior", "prior", model, model, loss, sample, {"model": model_cfg, "diffusion": diffusion_cfg, "drop_text": drop_text},
                  f"causal transformer, {diffusion_cfg['objective']} objective (the shapes preset's); text tokens (384) projected inside; "
                  "CFG in one call of batch 2B")


# ------------------------------------------------------------------------------ imagen-pytorch
def _imagen(cfg: dict) -> System:
    from imagen_pytorch import Imagen, Unet

    unet_cfg = {"dim": cfg["dim"], "text_embed_dim": TEXT_DIM, "dim_mults": (1, 2, 2), "num_resnet_blocks": 2,
                "layer_attns": (False, True, True), "layer_cross_attns": (False, True, True),
                "attn_heads": cfg["attn_heads"], "attn_dim_head": cfg["attn_dim_head"], "max_text_len": MAX_TOKENS}
    imagen = Imagen(unets=(Unet(**unet_cfg),), image_sizes=(32,), text_embed_dim=TEXT_DIM, timesteps=1000,
                    cond_drop_prob=0.1, auto_normalize_img=False)  # our images are already in [-1, 1]
    net = imagen.unets[0]

    def loss(batch):
        return imagen(batch["x"], text_embeds=batch["tokens"], text_masks=batch["mask"], unet_number=1)

    def sample(cond, steps, guidance, seed=0):
        torch.manual_seed(seed)  # imagen draws from the global generator
        imagen.noise_schedulers[0].num_timesteps = steps  # continuous time: sampling steps are free to choose
        with torch.no_grad():
            x = imagen.sample(text_embeds=cond["tokens"], text_masks=cond["mask"], cond_scale=guidance, use_tqdm=False)
        return x.clamp(-1, 1)

    return System("imagen-pytorch", "decoder", imagen, net, loss, sample, {"unet": _plain(unet_cfg), "imagen": {"timesteps": 1000, "cond_drop_prob": 0.1}},
                  "Imagen(Unet), continuous-time cosine, eps, min-SNR-5, ancestral sampler + dynamic thresholding; CFG as two calls of batch B")


# ------------------------------------------------------------------------------ dalle2-pytorch
def _dalle2(cfg: dict) -> System:
    from dalle2_pytorch import Decoder, Unet

    unet_cfg = {"dim": cfg["dim"], "image_embed_dim": TEXT_DIM, "text_embed_dim": TEXT_DIM, "cond_on_text_encodings": True,
                "cond_on_image_embeds": True, "dim_mults": (1, 2, 2), "num_resnet_blocks": 2, "self_attn": (False, True, True),
                "attn_heads": cfg["attn_heads"], "attn_dim_head": cfg["attn_dim_head"], "max_text_len": MAX_TOKENS}
    decoder = Decoder(unet=Unet(**unet_cfg), image_sizes=(32,), timesteps=1000, image_cond_drop_prob=DROP_EMBED,
                      text_cond_drop_prob=DROP_TEXT, auto_normalize_img=False)
    net = decoder.unets[0]

    def loss(batch):
        return decoder(batch["x"], image_embed=batch["pooled"], text_encodings=batch["tokens"])

    def sample(cond, steps, guidance, seed=0):
        torch.manual_seed(seed)
        decoder.sample_timesteps = (None if steps >= 1000 else steps,)  # fewer than 1000: its DDIM
        return decoder.sample(image_embed=cond["pooled"], text_encodings=cond["tokens"], cond_scale=guidance).clamp(-1, 1)

    return System("dalle2-pytorch", "decoder", decoder, net, loss, sample, {"unet": _plain(unet_cfg), "decoder": {"timesteps": 1000}},
                  "Decoder(Unet), cosine, eps + learned variance, DDIM; CFG as two calls of batch B")


def _dalle2_prior(cfg: dict) -> System:
    from dalle2_pytorch import DiffusionPrior, DiffusionPriorNetwork

    dim = cfg["width"]  # its network width is the embedding size, and its text encodings must be that wide too
    net_cfg = {"dim": dim, "depth": cfg["depth"], "heads": cfg["heads"], "dim_head": dim // cfg["heads"], "num_timesteps": 1000, "max_text_len": MAX_TOKENS}
    net = DiffusionPriorNetwork(**net_cfg)
    prior = DiffusionPrior(net=net, image_embed_dim=dim, timesteps=1000, cond_drop_prob=0.1, condition_on_text_encodings=True)

    def loss(batch):
        return prior(text_embed=batch["text_embed"], image_embed=batch["z"].clone(), text_encodings=batch["tokens"])

    def sample(cond, steps, guidance, seed=0):
        torch.manual_seed(seed)
        text_cond = {"text_embed": cond["text_embed"], "text_encodings": cond["tokens"]}
        with torch.no_grad():
            return prior.p_sample_loop((len(cond["text_embed"]), dim), text_cond=text_cond, cond_scale=guidance, timesteps=steps)

    return System("dalle2-pytorch-prior", "prior", prior, net, loss, sample, {"network": net_cfg},
                  "DiffusionPriorNetwork: embedding = width, text encodings must come at that width; CFG as two calls of batch B")


def prior_dims(name: str, size: str) -> tuple[int, int]:
    """(embedding size, text token width) a prior takes: dalle2's are both its width."""
    cfg = SIZES[size]["prior"]
    return (cfg["width"], cfg["width"]) if name == "dalle2-pytorch-prior" else (cfg["embed_dim"], TEXT_DIM)


# ----------------------------------------------------------------------------------- diffusers
def _diffusers(cfg: dict) -> System:
    from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel

    ch = cfg["channels"]
    unet_cfg = {"sample_size": 32, "in_channels": 3, "out_channels": 3, "block_out_channels": (ch, 2 * ch, 2 * ch),
                "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), "layers_per_block": 2,
                "cross_attention_dim": TEXT_DIM, "attention_head_dim": tuple(cfg["heads"]),  # diffusers: this is the head COUNT
                "norm_num_groups": 8 if ch < 32 else 16, "class_embed_type": "projection", "projection_class_embeddings_input_dim": TEXT_DIM}
    unet = UNet2DConditionModel(**unet_cfg)
    sched_cfg = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "epsilon"}
    train_sched = DDPMScheduler(**sched_cfg)

    def loss(batch):
        x = batch["x"]
        b = len(x)
        keep = _keep(b, DROP_ALL)
        tokens, mask, pooled = batch["tokens"] * keep[:, None, None], batch["mask"] & keep[:, None], batch["pooled"] * keep[:, None]
        noise = torch.randn_like(x)
        t = torch.randint(0, 1000, (b,))
        pred = unet(train_sched.add_noise(x, noise, t), t, encoder_hidden_states=tokens, encoder_attention_mask=mask, class_labels=pooled).sample
        return F.mse_loss(pred, noise)

    def sample(cond, steps, guidance, seed=0):
        g = torch.Generator().manual_seed(seed)
        sched = DDIMScheduler(**sched_cfg)
        sched.set_timesteps(steps)
        tokens, mask, pooled = cond["tokens"], cond["mask"], cond["pooled"]
        b = len(tokens)
        both = {"encoder_hidden_states": torch.cat([tokens, torch.zeros_like(tokens)]),
                "encoder_attention_mask": torch.cat([mask, torch.zeros_like(mask)]),
                "class_labels": torch.cat([pooled, torch.zeros_like(pooled)])}
        x = torch.randn((b, 3, 32, 32), generator=g)
        with torch.no_grad():
            for t in sched.timesteps:
                eps_c, eps_u = unet(torch.cat([x, x]), t, **both).sample.chunk(2)
                x = sched.step(eps_u + guidance * (eps_c - eps_u), t, x).prev_sample
        return x.clamp(-1, 1)

    return System("diffusers", "decoder", unet, unet, loss, sample, {"unet": _plain(unet_cfg), "scheduler": sched_cfg},
                  "UNet2DConditionModel, DDPM cosine eps training, DDIMScheduler; CFG in one call of batch 2B (as its pipelines)")


def _plain(cfg: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
