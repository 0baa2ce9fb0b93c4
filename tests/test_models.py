"""The shared networks: shapes, conditioning semantics, masks, and config/checkpoint contracts."""
import json

import pytest
import torch

from t2i.checkpoint import CheckpointError, Component, build_model, load_component, save_component
from t2i.config import ConfigError, config_from_dict
from t2i.models.clip import CLIP, CLIPConfig, kept_length
from t2i.models.prior import DiffusionPrior, PriorConfig
from t2i.models.unet import UNet, UNetConfig

DECODER = UNetConfig(image_size=32, patch_size=2, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,), head_dim=8, embed_dim=12, text_dim=384, context_dim=16)
UPSAMPLER = UNetConfig(image_size=64, patch_size=4, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(), low_res=True, noise_aug=True)


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give zero-initialised layers random weights so every input can influence the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def _decoder_inputs(b=2, t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(b, 3, 32, 32, generator=g), t=torch.tensor([10, 900])[:b], embed=torch.randn(b, 12, generator=g),
                embed_keep=torch.ones(b, dtype=torch.bool), tokens=torch.randn(b, t, 384, generator=g), token_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:b])


def test_unet_starts_as_zero_and_keeps_shape():
    torch.manual_seed(0)
    m = UNet(DECODER).eval()
    inp = _decoder_inputs()
    out = m(inp.pop("x"), inp.pop("t"), **inp)
    assert out.shape == (2, 3, 32, 32)
    assert torch.count_nonzero(out) == 0  # zero-initialised output layer: the residual starts at zero


def test_unet_ignores_padding_and_drops_embedding():
    m = _randomize(UNet(DECODER))
    inp = _decoder_inputs()
    x, t = inp.pop("x"), inp.pop("t")
    base = m(x, t, **inp)
    tok = inp["tokens"].clone()
    tok[0, 3:] = 100.0  # padding positions of row 0
    assert torch.allclose(m(x, t, **{**inp, "tokens": tok}), base, atol=1e-5)
    # with the embedding dropped, its value no longer matters
    drop = {**inp, "embed_keep": torch.zeros(2, dtype=torch.bool)}
    other = {**drop, "embed": torch.randn(2, 12)}
    assert torch.allclose(m(x, t, **drop), m(x, t, **other), atol=1e-6)
    assert not torch.allclose(m(x, t, **drop), base, atol=1e-3)


def test_text_positions_make_the_unet_see_word_order(tmp_path):
    from dataclasses import replace

    from safetensors.torch import save_file

    from t2i.checkpoint import load_weights

    inp = _decoder_inputs()
    x, t = inp.pop("x"), inp.pop("t")
    swapped = {**inp, "tokens": inp["tokens"][:, [1, 0, 2, 3, 4]]}  # two real tokens trade places
    no_text = {**inp, "token_mask": torch.zeros_like(inp["token_mask"])}

    @torch.no_grad()
    def effect(model, other):  # how far `other` moves the output, as a fraction of what the text moves
        base = model(x, t, **inp)
        return float((base - model(x, t, **other)).abs().max() / (base - model(x, t, **no_text)).abs().max())

    # without positions attention sees the tokens as a set: their order cannot matter
    plain = _randomize(UNet(DECODER))
    assert effect(plain, swapped) < 1e-3
    # warm-started from that model, the zero-initialised positions leave it unchanged ...
    positioned = UNet(replace(DECODER, text_positions=5)).eval()
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    assert load_weights(positioned, tmp_path / "plain.safetensors", warm_start=True).missing == ["text_pos"]
    assert torch.allclose(positioned(x, t, **inp), plain(x, t, **inp), atol=1e-6)
    # ... and once they are learned, the same words in another order give another output
    with torch.no_grad():
        positioned.text_pos.copy_(torch.randn(5, 16, generator=torch.Generator().manual_seed(1)))
    assert effect(positioned, swapped) > 1e-2
    with pytest.raises(ValueError, match="positions for 5"):
        positioned(x, t, **{**inp, "tokens": torch.randn(2, 6, 384), "token_mask": torch.ones(2, 6, dtype=torch.bool)})
    # an exact load still refuses a file that lacks a tensor or has one too many; a warm start
    # leaves the extra one out, but not a tensor of another shape
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(positioned, tmp_path / "plain.safetensors")
    save_file({k: v.contiguous() for k, v in positioned.state_dict().items()}, str(tmp_path / "positioned.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_weights(UNet(DECODER), tmp_path / "positioned.safetensors")
    back = UNet(DECODER).eval()
    assert load_weights(back, tmp_path / "positioned.safetensors", warm_start=True).unused == ["text_pos"]
    assert torch.allclose(back(x, t, **inp), plain(x, t, **inp), atol=1e-6)
    with pytest.raises(CheckpointError, match="shape"):
        load_weights(UNet(replace(DECODER, context_dim=32)), tmp_path / "plain.safetensors", warm_start=True)
    save_file({"foreign": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))  # nothing in common: not a warm start
    with pytest.raises(CheckpointError, match="none of its tensors"):
        load_weights(UNet(DECODER), tmp_path / "foreign.safetensors", warm_start=True)


def test_text_blocks_let_each_word_read_the_others(tmp_path):
    from dataclasses import replace

    from safetensors.torch import save_file

    from t2i.checkpoint import load_weights

    inp = _decoder_inputs()
    x, t = inp.pop("x"), inp.pop("t")
    relation = {**inp, "tokens": inp["tokens"].clone()}
    relation["tokens"][:, 2] = torch.randn(2, 384, generator=torch.Generator().manual_seed(3))  # another third word

    @torch.no_grad()
    def first_word(model, given):  # what the attention layers are given for the first word
        return model._conditioning(t, given["embed"], given["embed_keep"], given["tokens"], given["token_mask"], None)[1][:, 4]  # after the 4 embedding tokens

    # without text layers each word reaches attention on its own: the third does not change the first
    plain = _randomize(UNet(replace(DECODER, text_positions=5)))
    assert torch.allclose(first_word(plain, inp), first_word(plain, relation), atol=1e-6)
    # warm-started from that model, the zero-initialised blocks are the identity ...
    layered = UNet(replace(DECODER, text_positions=5, text_blocks=2)).eval()
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    assert all(name.startswith("text_blocks.") for name in load_weights(layered, tmp_path / "plain.safetensors", warm_start=True).missing)
    assert torch.allclose(layered(x, t, **inp), plain(x, t, **inp), atol=1e-6)
    # ... and once trained, the first word carries what the third says ("the circle left of ...")
    _randomize(layered)
    assert (first_word(layered, inp) - first_word(layered, relation)).abs().max() > 1e-4  # 1.2e-3; without the layers, 0
    # padding still does not matter, and a dropped caption gives finite outputs whatever its tokens
    out = layered(x, t, **inp)
    padded = inp["tokens"].clone()
    padded[0, 3:] = 100.0
    assert torch.allclose(layered(x, t, **{**inp, "tokens": padded}), out, atol=1e-5)
    none = {**inp, "token_mask": torch.zeros_like(inp["token_mask"])}
    dropped = layered(x, t, **none)
    assert torch.isfinite(dropped).all()
    assert torch.allclose(layered(x, t, **{**none, "tokens": torch.randn(2, 5, 384)}), dropped, atol=1e-5)


def test_image_positions_tell_attention_where_each_pixel_is():
    from t2i.nn.resnet import SpatialAttention

    x = torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    mirrored = x.flip(-1)
    # attention alone treats the pixels as a set: mirroring the input mirrors the output
    plain = _randomize(SpatialAttention(channels=16, head_dim=8))
    assert torch.allclose(plain(mirrored), plain(x).flip(-1), atol=1e-5)
    # with an embedding of each position, left and right are told apart
    placed = SpatialAttention(channels=16, head_dim=8, positions=16)
    placed.load_state_dict({**plain.state_dict(), "pos": torch.randn(16, 16, generator=torch.Generator().manual_seed(1))})
    assert not torch.allclose(placed(mirrored), placed(x).flip(-1), atol=1e-3)
    with pytest.raises(ValueError, match="16 positions got a 2x2 map"):
        placed(torch.randn(1, 16, 2, 2))
    # the UNet gives each attention layer the positions of its own resolution
    unet = UNet(UNetConfig(**{**DECODER.__dict__, "image_positions": True}))
    sizes = {name: tuple(p.shape) for name, p in unet.named_parameters() if name.endswith(".pos")}
    assert sizes and set(sizes.values()) == {(64, 32)}  # 32 px / patch 2 / 2 at level 1: 8x8, 32 channels


def test_upsampler_uses_low_res_and_aug_level():
    m = _randomize(UNet(UPSAMPLER))
    x, low = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 32, 32)
    a = m(x, torch.tensor([5]), low_res=low, aug_level=torch.tensor([0]))
    assert a.shape == (1, 3, 64, 64)
    assert not torch.allclose(a, m(x, torch.tensor([5]), low_res=low, aug_level=torch.tensor([100])))
    with pytest.raises(ValueError, match="low_res"):
        m(x, torch.tensor([5]), aug_level=torch.tensor([0]))


def test_unet_config_is_validated():
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(image_size=30, patch_size=2)
    with pytest.raises(ValueError, match="noise_aug needs low_res"):
        UNetConfig(noise_aug=True)
    with pytest.raises(ValueError, match="text_positions needs text_dim"):
        UNetConfig(text_positions=8)
    with pytest.raises(ValueError, match="text_blocks needs text_dim"):
        UNetConfig(text_blocks=1)
    with pytest.raises(ValueError, match="divisible by head_dim"):
        UNetConfig(text_dim=384, context_dim=20, head_dim=8, text_blocks=1)


def test_prior_is_causal_and_masks_padding():
    cfg = PriorConfig(embed_dim=8, width=16, depth=2, num_heads=2, max_tokens=6)
    m = _randomize(DiffusionPrior(cfg))
    g = torch.Generator().manual_seed(1)
    x, te, tok = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g), torch.randn(2, 4, 384, generator=g)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    t = torch.tensor([3, 500])
    out = m(x, t, text_embed=te, tokens=tok, token_mask=mask)
    assert out.shape == (2, 8)
    tok2 = tok.clone()
    tok2[0, 2:] = -50.0
    assert torch.allclose(m(x, t, text_embed=te, tokens=tok2, token_mask=mask), out, atol=1e-5)
    # a dropped caption: text inputs no longer matter
    keep = torch.tensor([False, True])
    a = m(x, t, text_embed=te, tokens=tok, token_mask=mask, keep=keep)
    b = m(x, t, text_embed=torch.randn(2, 8), tokens=torch.randn(2, 4, 384), token_mask=mask, keep=keep)
    assert torch.allclose(a[0], b[0], atol=1e-6) and (a[1] - b[1]).abs().max() > 1e-4
    mask_matrix = DiffusionPrior._attention_mask(mask, 8)[0, 0]
    assert not mask_matrix[1, 2] and mask_matrix[7, :2].all() and not mask_matrix[7, 2:4].any()


def test_clip_embeddings_and_loss():
    torch.manual_seed(0)
    m = CLIP(CLIPConfig(image_size=32, patch_size=8, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2, embed_dim=8))
    img = m.encode_image(torch.rand(3, 3, 64, 64) * 2 - 1)  # any side is resized to 32
    txt = m.encode_text(torch.randn(3, 5, 384), torch.ones(3, 5, dtype=torch.bool), torch.randn(3, 384))
    assert torch.allclose(img.norm(dim=-1), torch.ones(3)) and torch.allclose(txt.norm(dim=-1), torch.ones(3))
    e = torch.eye(3, 8)
    with torch.no_grad():
        m.logit_scale.fill_(4.6052)
    assert m.contrastive_loss(e, e) < 1e-3
    # a duplicated caption's other image is not a negative
    dup = torch.stack([e[0], e[0], e[2]])
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    assert m.contrastive_loss(dup, dup, same) < 1e-3 < m.contrastive_loss(dup, dup)


def test_clip_matching_head_learns_word_order_and_layout():
    """Two images (red left of blue, and mirrored) and two captions made of the same two token
    states in either order: only a head that reads both word order and where things are can
    match them. The towers' embeddings stay order-blind (mean pooling), which is the point."""
    torch.manual_seed(0)
    cfg = dict(image_size=8, patch_size=4, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2, embed_dim=8)
    assert not CLIP(CLIPConfig(**cfg)).has_match_head
    m = CLIP(CLIPConfig(**cfg, match_depth=2))  # one block to look, one to compare
    images, captions, mask, loss, logits = _train_on_mirrored_scenes(m, 200)
    assert loss < 0.05 and logits[:2].min() > 2 > -2 > logits[2:].max()
    with pytest.raises(ValueError, match="no matching head"):
        CLIP(CLIPConfig(**cfg)).match_logits(images, captions, mask)


def _train_on_mirrored_scenes(m: CLIP, steps: int):
    """Trains m's head on two images (red left of blue, and mirrored) and two captions of the same
    two token states in either order ("red ... blue", "blue ... red"). Returns the four pairs
    (two matches, then two mismatches): images, captions, mask, the last loss and their logits."""
    scenes = -torch.ones(2, 3, 8, 8)
    scenes[0, 0, :, :4] = scenes[0, 2, :, 4:] = 1  # red | blue
    scenes[1, 0, :, 4:] = scenes[1, 2, :, :4] = 1  # blue | red
    red, blue = torch.randn(2, 384)
    texts = torch.stack([torch.stack([red, blue]), torch.stack([blue, red])])
    pairs_image, pairs_text = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 1, 0])
    images, captions, mask, matches = scenes[pairs_image], texts[pairs_text], torch.ones(4, 2, dtype=torch.bool), pairs_image == pairs_text
    opt = torch.optim.Adam([p for n, p in m.named_parameters() if n.startswith("match_")], lr=3e-3)
    for _ in range(steps):
        loss = m.match_loss(images, captions, mask, matches)
        opt.zero_grad(), loss.backward(), opt.step()
    with torch.no_grad():
        return images, captions, mask, loss, m.match_logits(images, captions, mask)


def test_clip_matching_head_reads_a_shifted_caption_as_one_after_masked_words_and_without_positions_anywhere():
    """shift k (options.match_shift, in training) moves a caption's tokens k positions along: the
    same logits as the caption with k masked tokens before it. Each row has its own shift, as far
    as its own kept tokens leave room (padding does not count)."""
    torch.manual_seed(0)
    cfg = dict(image_size=8, patch_size=4, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2,
               embed_dim=8, max_tokens=6, match_depth=2)
    m = _randomize(CLIP(CLIPConfig(**cfg))).eval()
    for name, p in m.named_parameters():  # a head whose positions matter, as a trained head's do
        if name.startswith("match_"):
            p.data.normal_(0, 0.5)
    images, tokens = torch.rand(3, 3, 8, 8) * 2 - 1, torch.randn(3, 3, 384) * 0.05
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    assert kept_length(mask).tolist() == [3, 2, 1]
    with torch.no_grad():
        plain = m.match_logits(images, tokens, mask)
        assert torch.equal(m.match_logits(images, tokens, mask, shift=torch.zeros(3, dtype=torch.long)), plain)
        shifts = (1, 4, 5)  # up to max_tokens - kept tokens: 3, 4 and 5
        shifted = m.match_logits(images, tokens, mask, shift=torch.tensor(shifts))
        for row, (k, n) in enumerate(zip(shifts, (3, 2, 1))):
            padded = torch.cat([torch.randn(1, k, 384), tokens[row : row + 1, :n]], dim=1)
            keep = torch.cat([torch.zeros(1, k, dtype=torch.bool), torch.ones(1, n, dtype=torch.bool)], dim=1)
            assert torch.allclose(m.match_logits(images[row : row + 1], padded, keep), shifted[row : row + 1], atol=1e-5)
        assert (shifted - plain).abs().max() > 0.005
        with pytest.raises(ValueError, match="past position 6"):
            m.match_logits(images, tokens, mask, shift=torch.tensor([4, 0, 0]))
    # a head without positions of its own reads the caption the same wherever it starts
    free = CLIP(CLIPConfig(**cfg, match_text_positions=False)).eval()
    free.load_state_dict(m.state_dict())
    with torch.no_grad():
        plain = free.match_logits(images, tokens, mask)
        assert (plain - m.match_logits(images, tokens, mask)).abs().max() > 0.005
        assert torch.allclose(free.match_logits(images, tokens, mask, shift=torch.tensor(shifts)), plain, atol=1e-5)
        padded = torch.cat([torch.randn(3, 2, 384), tokens], dim=1)
        assert torch.allclose(free.match_logits(images, padded, torch.cat([torch.zeros(3, 2, dtype=torch.bool), mask], dim=1)), plain, atol=1e-5)


def test_clip_matching_head_with_rotary_positions_learns_word_order_wherever_the_caption_starts():
    """model.match_rotary: the head's words compare by their distance apart. It learns the
    mirrored scenes above without positions of its own, and still tells them apart with masked
    words before the caption (and with a shift), which a head of absolute positions would read
    at places it never trained on. Without positions at all the two captions look the same."""
    from t2i.nn.attention import rotate
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    dots = [float(rotate(q, torch.tensor([[a]])) @ rotate(k, torch.tensor([[b]])).transpose(-1, -2)) for a, b in ((3, 1), (7, 5), (2, 4))]
    assert dots[0] == pytest.approx(dots[1], abs=1e-5) and abs(dots[0] - dots[2]) > 1e-3
    cfg = dict(image_size=8, patch_size=4, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2,
               embed_dim=8, max_tokens=8, match_depth=3, match_text_positions=False)
    m = CLIP(CLIPConfig(**cfg, match_rotary=True))  # one block more than with absolute positions: to see which word comes first
    images, captions, mask, loss, logits = _train_on_mirrored_scenes(m, 400)
    assert loss < 0.05 and logits[:2].min() > 2 > -2 > logits[2:].max()
    with torch.no_grad():
        padded = torch.cat([torch.randn(4, 3, 384), captions], dim=1)
        before = torch.cat([torch.zeros(4, 3, dtype=torch.bool), mask], dim=1)
        assert torch.allclose(m.match_logits(images, padded, before), logits, atol=1e-4)
        assert torch.allclose(m.match_logits(images, captions, mask, shift=torch.tensor([0, 2, 4, 6])), logits, atol=1e-4)
        free = CLIP(CLIPConfig(**cfg)).eval()
        free.load_state_dict(m.state_dict())
        assert torch.allclose(*free.match_logits(images[[0, 2]], captions[[0, 2]], mask[:2]), atol=1e-5)  # one image, both orders


def test_config_refuses_unknown_and_ill_typed_keys():
    with pytest.raises(ConfigError, match="unknown option"):
        config_from_dict(PriorConfig, {"width": 16, "wdith": 3})
    with pytest.raises(ConfigError, match="expected int"):
        config_from_dict(PriorConfig, {"width": "16"})
    cfg = config_from_dict(UNetConfig, {"channel_mults": [1, 2], "attention_levels": [1]})
    assert cfg.channel_mults == (1, 2)


def test_component_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    comp = Component(model=_randomize(UNet(DECODER)), role="decoder", settings={"diffusion": {"objective": "eps"}})
    save_component(tmp_path / "dec", comp)
    back = load_component(tmp_path / "dec", role="decoder")
    for (k, v), (k2, v2) in zip(comp.model.state_dict().items(), back.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert back.settings == comp.settings
    with pytest.raises(CheckpointError, match="decoder checkpoint, expected a prior"):
        load_component(tmp_path / "dec", role="prior")
    cfg = json.loads((tmp_path / "dec/config.json").read_text())
    (tmp_path / "dec/config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer"):
        load_component(tmp_path / "dec")
    (tmp_path / "dec/config.json").write_text(json.dumps(cfg))
    weights = tmp_path / "dec/model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_component(tmp_path / "dec")
    with pytest.raises(CheckpointError, match="unknown component kind"):
        build_model("vae", {})


def test_upsampler_truncated_start_begins_at_the_resized_image():
    """A fresh upsampler predicts v = 0 (zero-initialised output), so a chain started at level 1
    returns the bicubic-resized input up to the tiny noise of that level."""
    import torch.nn.functional as F

    from t2i.pipelines.sampling import run_upsampler

    comp = Component(model=UNet(UPSAMPLER).eval(), role="upsampler", settings={"diffusion": {"objective": "v"}, "sample_start_level": 1})
    low = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = run_upsampler(comp, low, steps=2, generator=torch.Generator().manual_seed(1))
    resized = F.interpolate(low, size=(64, 64), mode="bicubic", align_corners=False).clamp(-1, 1)
    assert out.shape == (2, 3, 64, 64)
    assert (out - resized).abs().mean() < 0.02
    full = run_upsampler(Component(model=comp.model, role="upsampler", settings={"diffusion": {"objective": "v"}}), low, steps=2, generator=torch.Generator().manual_seed(1))
    assert (full - resized).abs().mean() > 0.1  # from pure noise, a fresh model gives no image


def test_efficient_unet_options_move_blocks_and_scale_skips():
    from dataclasses import replace

    from t2i.nn.resnet import Downsample, Upsample

    base = replace(DECODER, channel_mults=(1, 2, 2), attention_levels=(1, 2), embed_dim=0)
    today = UNet(base)
    efficient = replace(base, level_res_blocks=(1, 2, 3), scale_skips=True, downsample_first=True)
    model = _randomize(UNet(efficient))
    stages = lambda m: [type(b).__name__ for b in m.down]  # noqa: E731
    assert stages(today) == ["ModuleList", "Downsample", "ModuleList", "Downsample", "ModuleList"]
    assert stages(model) == ["Downsample", "ModuleList", "Downsample", "ModuleList", "ModuleList", "Downsample", "ModuleList", "ModuleList", "ModuleList"]
    assert sum(isinstance(b, Upsample) for b in model.up) == 3 and not isinstance(today.up[-1], (Upsample, Downsample))
    # after the last upsampling, one block reads the stem's full-resolution output as its skip
    assert isinstance(model.up[-2], Upsample) and model.up[-1][0].conv1.in_channels == 2 * base.base_channels
    inp = _decoder_inputs()
    inp.pop("embed"), inp.pop("embed_keep")
    x, t = inp.pop("x"), inp.pop("t")
    out = model(x, t, **inp)
    assert out.shape == x.shape and torch.isfinite(out).all()
    unscaled = UNet(replace(efficient, scale_skips=False))
    unscaled.load_state_dict(model.state_dict())
    assert not torch.allclose(unscaled.eval()(x, t, **inp), out, atol=1e-4)  # the 1/sqrt(2) is applied
    positioned = UNet(replace(efficient, image_positions=True))  # attention layers know their (halved) resolution
    assert positioned(x, t, **inp).shape == x.shape
    with pytest.raises(ValueError, match="level_res_blocks needs one count >= 1 per level"):
        replace(base, level_res_blocks=(1, 2))
    with pytest.raises(ValueError, match="not divisible by patch_size·2\\^3"):
        replace(efficient, image_size=24)
