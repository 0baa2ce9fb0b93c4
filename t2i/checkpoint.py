"""Component folders: `config.json` + `model.safetensors`, written atomically, versioned.

A component is a module plus the config that built it. Loading reads
JSON and safetensors only, so an untrusted folder cannot run code. config.json holds:

    {"format_version": 1, "component": "unet", "role": "decoder",
     "model": {...the model's config...}, "settings": {...how the role uses it...}, "info": {...}}
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from t2i.config import ConfigError, config_from_dict, config_to_dict, read_json
from t2i.errors import InputError
from t2i.files import exchange, make_temp_folder, save_tensors
from t2i.int8 import from_int8, to_int8
from t2i.models.clip import CLIP, CLIPConfig
from t2i.models.prior import DiffusionPrior, PriorConfig
from t2i.models.scene_reader import ReaderConfig, SceneReader
from t2i.models.unet import UNet, UNetConfig

FORMAT_VERSION = 1
MODEL_CLASSES: dict[str, tuple[type[nn.Module], type]] = {
    "unet": (UNet, UNetConfig),
    "prior": (DiffusionPrior, PriorConfig),
    "clip": (CLIP, CLIPConfig),
    "reader": (SceneReader, ReaderConfig),
}


class CheckpointError(InputError):
    """A folder that is not a loadable component or pipeline; the message says why."""


@dataclass
class Component:
    """A model with its role in a pipeline and the settings that role needs (diffusion schedule…)."""

    model: nn.Module
    role: str
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        for kind, (cls, _) in MODEL_CLASSES.items():
            if type(self.model) is cls:
                return kind
        raise CheckpointError(f"{type(self.model).__name__} is not a saveable component")


def build_model(kind: str, model_config: dict[str, Any]) -> nn.Module:
    if kind not in MODEL_CLASSES:
        raise CheckpointError(f"unknown component kind '{kind}' (known: {', '.join(MODEL_CLASSES)})")
    cls, config_cls = MODEL_CLASSES[kind]
    try:
        return cls(config_from_dict(config_cls, model_config, where=f"{kind} config"))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    except InputError as e:  # a value the model's config refuses
        raise CheckpointError(f"{kind} config: {e}") from None


def component_json(component: Component) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "component": component.kind,
        "role": component.role,
        "model": config_to_dict(component.model.config),
        "settings": component.settings,
        "info": component.info,
    }


# dtype=torch.int8 keeps each weight matrix and kernel of at least this many values as int8 with a
# float32 scale per output channel (stored as NAME + INT8_SCALE); the rest (biases, norms) as fp16
INT8_MIN_SIZE = 1024
INT8_SCALE = "::int8_scale"  # no module attribute can hold "::", so no real tensor has this name


def _stored(name: str, v: torch.Tensor, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """One state-dict tensor as the file keeps it: {file key: tensor}."""
    v = v.detach().to("cpu")
    if not v.is_floating_point():
        return {name: v.contiguous()}
    if dtype == torch.int8:
        if v.ndim >= 2 and v.numel() >= INT8_MIN_SIZE:
            q, scale = to_int8(v)
            return {name: q.contiguous(), name + INT8_SCALE: scale.contiguous()}
        dtype = torch.float16
    return {name: v.to(dtype).contiguous()}


def _dequantized(state: dict[str, torch.Tensor], file: Path) -> dict[str, torch.Tensor]:
    """A weights file's tensors with every int8 one (it has a scale beside it) back in float32."""
    scales = {k[: -len(INT8_SCALE)]: v for k, v in state.items() if k.endswith(INT8_SCALE)}
    odd = [k for k in scales if k not in state or state[k].dtype != torch.int8]
    if odd:
        raise CheckpointError(f"{file}: a scale without its int8 tensor ({odd[0]})")
    return {k: from_int8(v, scales[k]) if k in scales else v for k, v in state.items() if not k.endswith(INT8_SCALE)}


def write_component_files(folder: Path, component: Component, *, dtype: torch.dtype = torch.float32, shared_with: Component | None = None) -> None:
    """Write config.json and model.safetensors into an existing folder (not atomic by itself).
    dtype is the storage of floating tensors: float32, float16, bfloat16, or int8 (see INT8_SCALE);
    loading gives float32 back. With `shared_with` (a component saved beside it), the tensors
    equal to that one's once stored are left out and config.json lists them as "shared_tensors":
    load_component with the same `shared_with` puts them back (a fine-tune of a few layers
    stores just those)."""
    state = {k: _stored(k, v, dtype) for k, v in component.model.state_dict().items()}
    config = component_json(component)
    if shared_with is not None:
        theirs = {k: _stored(k, v, dtype) for k, v in shared_with.model.state_dict().items()}
        same = lambda a, b: a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)  # noqa: E731
        shared = {k for k, parts in state.items() if k in theirs and same(parts, theirs[k])}
        if shared:
            state = {k: v for k, v in state.items() if k not in shared}
            config["shared_tensors"] = sorted(shared)
    tensors = {key: t for parts in state.values() for key, t in parts.items()}
    save_tensors(tensors, folder / "model.safetensors", metadata={"format_version": str(FORMAT_VERSION)})
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def save_component(path: str | Path, component: Component, *, dtype: torch.dtype = torch.float32, overwrite: bool = False) -> Path:
    """Save atomically: the folder at `path` is either the old one or the complete new one.
    An existing folder is replaced only with overwrite=True, and only if it is a component."""
    path = Path(path)
    with atomic_folder(path, overwrite=overwrite, owned=is_component_folder) as tmp:
        write_component_files(tmp, component, dtype=dtype)
    return path


class OutputExistsError(FileExistsError):
    """An output path already holds something that t2i was not asked to, or may not, replace."""


class atomic_folder:
    """Context manager giving a temporary sibling folder that becomes `path` on success.

    An existing `path` is never replaced unless `overwrite` is set, and even then only if
    `owned(path)` says t2i wrote it (a pipeline folder holds pipeline.json, a component folder
    config.json): a command pointed at the wrong folder must not delete a user's files."""

    def __init__(self, path: Path, *, overwrite: bool = False, owned: Callable[[Path], bool] | None = None) -> None:
        self.path, self.overwrite, self.owned = Path(path), overwrite, owned

    def check(self) -> None:
        """Raise OutputExistsError if the context would refuse `path`; callers may ask before any work."""
        if not (self.path.exists() or self.path.is_symlink()):
            return
        if not self.overwrite:
            raise OutputExistsError(f"{self.path}: already exists (replacing it needs --overwrite, or overwrite=True from Python)")
        if self.path.is_symlink() or not self.path.is_dir() or self.owned is None or not self.owned(self.path):
            raise OutputExistsError(f"{self.path}: exists and was not written by t2i; refusing to replace it even with --overwrite")

    def __enter__(self) -> Path:
        self.check()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = make_temp_folder(self.path.parent, f".{self.path.name}.tmp-")
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            self.check()  # the path may have appeared while the work ran
        except OutputExistsError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        if self.path.exists() and exchange(self.tmp, self.path):  # the new folder in, the old one out, in one step
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        # Without an atomic exchange (not Linux, or a file system without it) there is a moment
        # between the two renames in which `path` does not exist; the old folder is kept aside until then.
        old = self.tmp.with_name(self.tmp.name + ".old")
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)


def is_component_folder(path: Path) -> bool:
    """A folder t2i wrote as a component: its config.json names a component kind."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("component") in MODEL_CLASSES
    except (OSError, ValueError, AttributeError):
        return False


def read_versioned_json(path: Path, *, what: str) -> dict[str, Any]:
    """Read a format-versioned JSON file; refuse a missing, foreign or newer one with a reason."""
    if not path.exists():
        raise CheckpointError(f"{path.parent}: not a {what} folder (no {path.name})")
    try:
        data = read_json(path)
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: no format_version; not a t2i {what}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path.parent}: {what} format version {version} is newer than this t2i understands ({FORMAT_VERSION}); upgrade t2i")
    return data


def read_component_json(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model folder")
    cfg = read_versioned_json(path / "config.json", what="component")
    for key in ("component", "role", "model"):
        if key not in cfg:
            raise CheckpointError(f"{path / 'config.json'}: missing '{key}'")
    return cfg


def load_component(path: str | Path, *, role: str | None = None, weights: str = "model.safetensors", shared_with: Component | None = None) -> Component:
    """Load a component folder; `role` (e.g. "decoder") makes a component of another role an error.
    A component saved with `shared_with` (its config lists "shared_tensors") takes those tensors
    from the same component again."""
    path = Path(path)
    cfg = read_component_json(path)
    if role is not None and cfg["role"] != role:
        raise CheckpointError(f"{path}: this is a {cfg['role']} checkpoint, expected a {role}")
    model = build_model(cfg["component"], cfg["model"])
    shared = cfg.get("shared_tensors", [])
    if shared and shared_with is None:
        raise CheckpointError(f"{path}: stores only its differences from another UNet of its pipeline; load the pipeline folder")
    theirs = shared_with.model.state_dict() if shared else {}
    lacking = [k for k in shared if k not in theirs]
    if lacking:
        raise CheckpointError(f"{path}: shares tensors its pipeline's other UNet does not have ({', '.join(lacking[:3])})")
    load_weights(model, path / weights, extra={k: theirs[k] for k in shared})
    return Component(model=model.eval(), role=cfg["role"], settings=cfg.get("settings", {}), info=cfg.get("info", {}))


@dataclass(frozen=True)
class WeightsFit:
    """How a weights file fitted a model: what the model had that the file lacked, and the reverse."""

    missing: list[str]
    unused: list[str]


def load_weights(model: nn.Module, file: Path, *, warm_start: bool = False, extra: dict[str, torch.Tensor] | None = None) -> WeightsFit:
    """Load `file` into `model`, exactly. A warm start (`--init-from`) also takes a model of
    another shape: tensors the file lacks keep the model's own initial values, and tensors the
    model has no place for (a decoder's CLIP-embedding input, say) are left out; both are named
    in the result. Tensors present in both must agree in shape. `extra` holds tensors stored
    elsewhere (see write_component_files' shared_with), loaded as if the file held them."""
    if not file.exists():
        raise CheckpointError(f"{file.parent}: missing {file.name}")
    try:
        state = load_file(str(file))
    except Exception as e:  # safetensors raises several types for truncated or foreign files
        raise CheckpointError(f"{file}: unreadable weights ({e})") from None
    state = _dequantized(state, file)
    if extra:
        state = {**{k: v.detach().cpu() for k, v in extra.items()}, **state}
    own = model.state_dict()
    fit = WeightsFit(missing=sorted(set(own) - set(state)), unused=sorted(set(state) - set(own)))
    if (fit.missing or fit.unused) and not warm_start:
        raise CheckpointError(f"{file}: weights do not fit the config (missing {fit.missing[:3]}, unexpected {fit.unused[:3]})")
    if len(fit.missing) == len(own):
        raise CheckpointError(f"{file}: none of its tensors belong to this model")
    state = {k: v for k, v in state.items() if k in own}
    for name, tensor in state.items():
        if tensor.shape != own[name].shape:
            raise CheckpointError(f"{file}: {name} has shape {tuple(tensor.shape)}, config expects {tuple(own[name].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():  # a diverged run's weights draw black images
            raise CheckpointError(f"{file}: {name} holds NaN or infinite values")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=not fit.missing)
    return fit


def resolve_component(path: str | Path) -> Path:
    """A component folder, or a training run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / "config.json").exists():
        return path
    pointer = path / "latest"
    if pointer.exists():
        return path / "checkpoints" / pointer.read_text().strip()
    raise CheckpointError(f"{path}: neither a component folder nor a training run with a checkpoint")
