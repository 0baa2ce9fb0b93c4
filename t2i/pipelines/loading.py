"""Finding and loading a pipeline of any system: a shipped model by name, or a folder by path.

A pipeline folder's pipeline.json names its system ("pipeline": "unclip"); the registry gives
that system's pipeline class, whose from_folder reads the rest.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from t2i import registry
from t2i.checkpoint import CheckpointError, read_versioned_json
from t2i.errors import InputError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"


def is_pipeline_folder(path: Path) -> bool:
    """A folder t2i wrote as a pipeline (the only kind `save(overwrite=True)` may replace)."""
    return (Path(path) / "pipeline.json").is_file()


def shipped_models() -> dict[str, Path]:
    return {p.name: p for p in sorted(SHIPPED_DIR.iterdir()) if is_pipeline_folder(p)} if SHIPPED_DIR.is_dir() else {}


def pipeline_kind(path: Path) -> str:
    """The system a pipeline folder belongs to, from its pipeline.json."""
    spec = read_versioned_json(Path(path) / "pipeline.json", what="pipeline")
    kind = spec.get("pipeline")
    if not isinstance(kind, str):
        raise CheckpointError(f"{path}/pipeline.json: no 'pipeline' kind")
    return kind


def load_pipeline(name_or_path: str | Path = "emoji") -> Any:
    """A shipped model by name ("emoji", "shapes") or a pipeline folder by path, of any system.

    A folder that happens to share a shipped model's name (an eval output called `shapes`, say)
    does not shadow the model; only a pipeline folder (one with pipeline.json) does."""
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path):
        raise InputError(f"a model is a shipped model's name or a pipeline folder's path, got {name_or_path!r}")
    shipped = shipped_models()
    path = Path(name_or_path)
    if str(name_or_path) in shipped and not is_pipeline_folder(path):
        path = shipped[str(name_or_path)]
    elif not path.exists():
        names = ", ".join(shipped) or "none installed"
        raise CheckpointError(f"no model '{name_or_path}': not a folder, and not a shipped model ({names})")
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model folder")
    kind = pipeline_kind(path)
    try:
        system = registry.system(kind)
    except InputError:
        raise CheckpointError(f"{path}: a {kind!r} pipeline, and this t2i knows {', '.join(s.name for s in registry.SYSTEMS)}") from None
    return system.load_pipeline_class().from_folder(path)
