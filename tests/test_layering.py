"""The package layering: a part of t2i imports only parts below it, so there are no import cycles,
training never reaches into evaluation (or back), and the library never imports the CLI."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "t2i"

# lowest first; a unit may import from units of lower layers only (and from itself)
LAYERS: list[set[str]] = [
    {"errors"},
    {"config", "threads", "progress", "files", "int8", "registry"},
    {"data", "nn", "diffusion", "tensor_file"},
    {"text", "image_grid", "models"},
    {"checkpoint"},
    {"pipelines"},
    {"train", "eval"},
    {"unclip", "imagen", "serve"},  # the systems (each its pipeline, training stages and own evaluations); the HTTP server
    {"commands", "__init__"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """t2i.train.stages -> train; t2i.errors -> errors; t2i -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """Every t2i module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "t2i":
            found |= {f"t2i.{a.name}" for a in node.names} if node.module == "t2i" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "t2i"}
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        me = rel.parts[0]
        if me not in LAYER_OF:
            out.append(f"{path.relative_to(root)}: unit {me!r} has no layer in tests/test_layering.py")
            continue
        for module in sorted(imports(path)):
            other = unit_of(module)
            if other == me:
                continue
            if other not in LAYER_OF or LAYER_OF[other] >= LAYER_OF[me]:
                out.append(f"{path.relative_to(root)} imports {module}: {me} (layer {LAYER_OF[me]}) may only import lower layers, "
                           f"{other} is layer {LAYER_OF.get(other, '?')}")
    return out


def test_every_import_goes_down_the_layers() -> None:
    assert violations() == []


def test_the_check_catches_what_it_forbids(tmp_path) -> None:
    # a copy of the layout with the two import cycles this test was written against
    for name, text in {"train/stages.py": "from t2i.eval.grid import save_grid\n",
                       "eval/common.py": "def f():\n    from t2i.train.stages import clip_image_embeds\n",
                       "commands.py": "from t2i.cli import UsageError\n",
                       "pipelines/unclip.py": "import t2i.cli\n",
                       "data/dataset.py": "from t2i.errors import InputError\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = violations(tmp_path)
    assert len(found) == 4 and not any(line.startswith("data/") for line in found)
    assert [line.split(" imports ")[0] for line in found] == ["commands.py", "eval/common.py", "pipelines/unclip.py", "train/stages.py"]
