"""Caption memory: retrieval-augmented text conditioning, for any pipeline that reads captions.

unCLIP blends the prompt's CLIP text embedding with its neighbours' and hands prior and decoder
the nearest caption's tokens (below); Imagen steers its UNets' guided prediction towards the
nearest caption's (t2i/imagen/pipeline.py). Written first for unCLIP, whose story follows.

Our CLIP text head, trained on a few thousand short captions, maps a prompt that is worded
differently from its captions ("a sleepy sloth", "I want a tall giraffe") far from the right
image: 32% of 230 everyday prompts land nearest their emoji's image, against 95% for the exact
names (51% and 94% after training the text head on augmented captions). The frozen sentence
encoder generalises much better: the training caption nearest a prompt by MiniLM's sentence
embedding is the right emoji 83% of the time. The memory keeps the training captions and
their sentence embeddings as retrieval keys (the first memories also kept their CLIP text
embeddings; newer ones let the pipeline's CLIP make those of the neighbours found); a
prompt's text embedding is blended with the softmax-weighted CLIP text embeddings of its k
nearest captions (as kNN-LM interpolates a model with its nearest neighbours, Khandelwal et al.
2020; retrieval-augmented diffusion models condition on neighbours in the same way):

    z = normalize((1 - w) · z_prompt + w · normalize(Σ_j softmax(s_j / τ) · z_caption_j))

with s_j the cosines of the prompt's sentence embedding to the k nearest captions' keys (in the
keys' projected space, when the memory keeps fewer dimensions). An exact caption is its own
nearest neighbour, so its embedding barely moves (with projected keys, nearly always: two captions
can tie). w is a sampling option (`caption_memory`, 0
turns it off). The blend feeds the prior and the reranking of decoder candidates; evaluation's
CLIP scores keep the prompt's own embedding.

The prior and the decoder also read the prompt's text tokens, and they have only ever seen those
of their training captions. With the blended embedding and the prompt's own tokens the pipeline
draws the right emoji for 54% of 100 everyday prompts (2 images each); with the tokens of the
nearest caption, 64% (exact names: 77%). So when the memory is on, prior, decoder and candidate
reranking read the nearest caption's tokens (`nearest_captions`); an exact caption is its own
nearest, and nothing changes for it. The caption handed on is an image's name (its first
caption): a key such as "smiley", which captions one emoji only, stands for "grinning face with
big eyes", because the models draw the emoji from such captions far less often than from the name.

Retrieval of whole captions suits data whose prompts name one thing the data has (emoji). On a
compositional world it undoes composition: a held-out colour–shape pair has no caption, and the
pooled sentence embedding barely sees word order (scripts/probe_word_order.py), so the shapes
pipeline ships without a memory (docs/results/unclip.md).

Search words (emoji: emojilib's "frisbee", "cockerel", "loo") are keys too, never trained on:
each stands for its image's first caption (the CLDR name), so prior and decoder still read a
caption they know. They lift the nearest key's share of the right emoji from 0.79 to 0.83 of the
development prompts.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from t2i.data.search_words import one_image_per_group
from t2i.errors import InputError
from t2i.files import save_tensors
from t2i.int8 import from_int8, to_int8

MEMORY_VERSION = 1


@dataclass
class CaptionMemory:
    """N training captions: the strings, optionally their CLIP text embeddings (N, E), and M >= N
    retrieval keys (M, D): sentence embeddings of the captions and of any search words, with
    `key_caption` (M,) naming the caption each key stands for (None: key i is caption i).

    Keys may live in fewer dimensions than the sentence encoder's 384: `projection` (384, D)
    holds the top right singular vectors of the captions' embeddings, and prompts are projected
    the same way (a 16,764-caption shapes memory at D = 64 is 1 MB instead of 6.4 MB). Without
    stored text embeddings the neighbours' are computed when sampling by the pipeline's own CLIP
    (`embed_text`), so the memory does not go stale when the CLIP is retrained."""

    keys: torch.Tensor
    text_embeds: torch.Tensor | None = None
    captions: list[str] | None = None  # memories saved before the strings were kept have none
    k: int = 8
    temperature: float = 0.02
    projection: torch.Tensor | None = None
    key_caption: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.keys.ndim != 2 or len(self.keys) == 0:
            raise InputError(f"caption memory needs (N, D) sentence embeddings, got {tuple(self.keys.shape)}")
        if self.text_embeds is None and self.captions is None:
            raise InputError("caption memory needs its captions or their text embeddings")
        if self.key_caption is not None and (self.key_caption.shape != (len(self.keys),) or int(self.key_caption.min()) < 0
                                             or int(self.key_caption.max()) >= self.caption_count):
            raise InputError(f"caption memory has {len(self.keys)} keys but key_caption {tuple(self.key_caption.shape)} "
                             f"does not name one of its {self.caption_count} captions for each")
        if self.text_embeds is not None and (self.text_embeds.ndim != 2 or len(self.text_embeds) != self.caption_count):
            raise InputError(f"caption memory has {self.caption_count} captions and text embeddings of shape {tuple(self.text_embeds.shape)}")
        if self.projection is not None and (self.projection.ndim != 2 or self.projection.shape[1] != self.keys.shape[1]):
            raise InputError(f"caption memory keys have {self.keys.shape[1]} dimensions, its projection makes {tuple(self.projection.shape)}")
        if self.k < 1 or not self.temperature > 0:
            raise InputError(f"caption memory needs k >= 1 and a temperature > 0, got {self.k} and {self.temperature}")
        if self.key_caption is None and self.captions is not None and len(self.captions) != len(self.keys):
            raise InputError(f"caption memory has {len(self.keys)} embeddings and {len(self.captions)} captions")

    def __len__(self) -> int:
        """The number of retrieval keys (captions and search words)."""
        return len(self.keys)

    @property
    def caption_count(self) -> int:
        if self.key_caption is None:
            return len(self.keys)
        return len(self.captions) if self.captions is not None else len(self.text_embeds)

    def _caption_rows(self, key_rows: torch.Tensor) -> torch.Tensor:
        return key_rows if self.key_caption is None else self.key_caption[key_rows]

    @property
    def query_dim(self) -> int:
        """The width of the sentence embeddings the memory is queried with."""
        return self.keys.shape[1] if self.projection is None else self.projection.shape[0]

    def similarities(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, 384) sentence embeddings -> (B, N) cosines to the captions' keys."""
        query = pooled.float() if self.projection is None else F.normalize(pooled.float() @ self.projection, dim=-1)
        return query @ self.keys.T

    def neighbours(self, pooled: torch.Tensor, embed_text: Callable[[list[str]], torch.Tensor] | None = None) -> torch.Tensor:
        """(B, 384) sentence embeddings -> (B, E) unit CLIP text embedding of the nearest captions.
        embed_text (captions -> (n, E)) makes the captions' text embeddings when none are stored."""
        top = self.similarities(pooled).topk(min(self.k, len(self)), dim=1)
        weights = torch.softmax(top.values / self.temperature, dim=1)
        captions = self._caption_rows(top.indices)  # two keys may stand for one caption
        if self.text_embeds is not None:
            embeds = self.text_embeds[captions]
        elif embed_text is None:
            raise InputError("this caption memory keeps no text embeddings: give embed_text to make its captions' embeddings")
        else:  # each neighbour encoded once, however many prompts share it
            rows, where = captions.unique(return_inverse=True)
            embeds = F.normalize(embed_text([self.captions[i] for i in rows.tolist()]).float(), dim=-1)[where]
        return F.normalize((weights[..., None] * embeds).sum(1), dim=-1)

    def nearest_captions(self, pooled: torch.Tensor) -> list[str] | None:
        """(B, 384) sentence embeddings -> the nearest caption of each, or None without strings."""
        if self.captions is None:
            return None
        return [self.captions[i] for i in self._caption_rows(self.similarities(pooled).argmax(dim=1)).tolist()]

    def blend(self, pooled: torch.Tensor, text_embed: torch.Tensor, weight: float, embed_text: Callable[[list[str]], torch.Tensor] | None = None) -> torch.Tensor:
        """The prompts' CLIP text embeddings (B, E) moved `weight` of the way to their neighbours'."""
        if weight == 0:
            return text_embed
        return F.normalize((1 - weight) * text_embed + weight * self.neighbours(pooled, embed_text), dim=-1)

    # ---- persistence: embeddings as int8 with a scale per row (cosines change by < 1e-3) ----
    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tensors = _int8("keys", self.keys)
        if self.text_embeds is not None:
            tensors.update(_int8("text_embeds", self.text_embeds))
        if self.projection is not None:
            tensors["projection"] = self.projection.float().contiguous()
        if self.key_caption is not None:
            tensors["key_caption"] = self.key_caption.to(torch.int32).contiguous()
        save_tensors(tensors, folder / "memory.safetensors")
        if self.captions is not None:
            (folder / "captions.json").write_text(json.dumps(self.captions, ensure_ascii=False, indent=0))
        (folder / "config.json").write_text(json.dumps({"format_version": MEMORY_VERSION, "kind": "caption_memory", "k": self.k,
                                                        "temperature": self.temperature, "captions": self.caption_count, "keys": len(self),
                                                        "key_dims": self.keys.shape[1]}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> CaptionMemory:
        from t2i.checkpoint import CheckpointError, read_versioned_json

        spec = read_versioned_json(folder / "config.json", what="caption memory")
        try:
            data = load_file(str(folder / "memory.safetensors"))
            captions = json.loads((folder / "captions.json").read_text()) if (folder / "captions.json").exists() else None
            keys = _unit(data, "keys" if "keys_int8" in data else "pooled")  # memories before projected keys named them "pooled"
            text_embeds = _unit(data, "text_embeds") if "text_embeds_int8" in data else None
            key_caption = data["key_caption"].long() if "key_caption" in data else None
            return cls(keys, text_embeds, captions, k=int(spec.get("k", 8)), temperature=float(spec.get("temperature", 0.02)),
                       projection=data.get("projection"), key_caption=key_caption)
        except (OSError, KeyError, ValueError, RuntimeError) as e:  # JSONDecodeError is a ValueError
            raise CheckpointError(f"{folder}: unreadable caption memory ({e})") from None


def _int8(name: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    q, scale = to_int8(x)
    return {f"{name}_int8": q, f"{name}_scale": scale}


def _unit(data: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.normalize(from_int8(data[f"{name}_int8"], data[f"{name}_scale"]), dim=-1)


def _names_and_owners(data) -> tuple[set[str], dict[str, set[str]]]:
    """The names (first captions) of the images a memory keeps, and each of their captions -> the
    names of the images it captions."""
    names: set[str] = set()
    owners: dict[str, set[str]] = {}
    for i in one_image_per_group(data):
        name = data.captions[i][0]
        names.add(name)
        for c in data.captions[i]:
            owners.setdefault(c, set()).add(name)
    return names, owners


def memory_captions(data) -> list[str]:
    """The captions a memory hands on, unique and sorted: every image's name (its first caption),
    and the other captions that caption more than one image ("yay": grinning face, clapping hands)."""
    names, owners = _names_and_owners(data)
    return sorted(c for c, of in owners.items() if c in names or len(of) > 1)


def caption_aliases(data) -> list[tuple[str, str]]:
    """(caption, name) for every other caption, which captions one image only ("smiley" -> "grinning
    face with big eyes"): a key that stands for the name. The models draw an emoji from a caption
    such as "smiley" far less often than from its name (0.26 against 0.75 of the images, the 51
    development prompts whose nearest key is such a caption), so the memory hands on the name."""
    names, owners = _names_and_owners(data)
    return [(c, next(iter(of))) for c, of in owners.items() if c not in names and len(of) == 1]


def check_memory(memory: CaptionMemory | None, defaults) -> None:
    """A pipeline's memory fits its sentence encoder, and is there when its default options use it."""
    from t2i.checkpoint import CheckpointError
    from t2i.text.encoder import EMBED_DIM

    if memory is not None and memory.query_dim != EMBED_DIM:
        raise CheckpointError(f"the caption memory is queried with {memory.query_dim}-d sentence embeddings, the text encoder makes {EMBED_DIM}-d ones")
    if defaults.caption_memory and memory is None:
        raise CheckpointError("the default sampling options use a caption memory, and the pipeline has none")


def assembled_memory(name: str | None, defaults, *, dims: int = 0, max_length: int = 32) -> CaptionMemory | None:
    """The memory of a pipeline assembled with `--caption-memory NAME` (None without one): the
    data's captions (names, and captions shared by several images), each other caption and
    search word as a key that stands for its image's name."""
    if not name:
        if defaults.caption_memory:
            raise InputError("the preset's sampling defaults use a caption memory: give the data whose captions it keeps (--caption-memory DATA)")
        return None
    from t2i.data.search_words import search_aliases
    from t2i.data.sources import load_dataset, load_search_words

    data = load_dataset(name, size=16)
    aliases = caption_aliases(data) + search_aliases(data, load_search_words(name))
    return build_caption_memory(memory_captions(data), aliases=aliases, dims=dims, max_length=max_length)


def build_caption_memory(captions: list[str], *, aliases: list[tuple[str, str]] = (), dims: int = 0, k: int = 8,
                         temperature: float = 0.02, max_length: int = 32) -> CaptionMemory:
    """Keys for `captions`, and for each alias (key string, the caption it stands for), from the
    frozen sentence encoder (disk-cached), reduced to their top `dims` singular directions when
    dims > 0; no text embeddings (the pipeline's CLIP makes them)."""
    from t2i.text.cache import encode_cached

    kept = sorted(set(captions))
    row = {c: i for i, c in enumerate(kept)}
    aliases = [(key, caption) for key, caption in dict.fromkeys(aliases) if key not in row]
    if any(caption not in row for _, caption in aliases):
        missing = next(caption for _, caption in aliases if caption not in row)
        raise InputError(f"a search word stands for {missing!r}, which is not one of the memory's captions")
    strings = kept + [key for key, _ in aliases]
    encoding, index = encode_cached(strings, max_length=max_length)
    keys, projection = F.normalize(encoding.pooled.float()[index], dim=-1), None
    if dims:
        if not 0 < dims <= min(keys.shape):  # no more directions than captions or dimensions
            raise InputError(f"memory dims must be between 1 and {min(keys.shape)} for {len(keys)} captions, got {dims}")
        projection = torch.linalg.svd(keys, full_matrices=False).Vh[:dims].T.contiguous()
        keys = F.normalize(keys @ projection, dim=-1)
    key_caption = torch.tensor(list(range(len(kept))) + [row[c] for _, c in aliases]) if aliases else None
    return CaptionMemory(keys, None, kept, k=k, temperature=temperature, projection=projection, key_caption=key_caption)
