"""t2i: text-to-image generation by diffusion (unCLIP / DALL-E 2), trainable on a CPU.

    import t2i
    pipe = t2i.load_pipeline("emoji")          # a shipped model, or a pipeline folder
    images = pipe(["a grinning cat"], num_images=4, seed=0)   # PIL images
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["load_pipeline", "__version__"]


def load_pipeline(name_or_path: str = "emoji"):
    """A shipped pipeline by name ("emoji", "shapes") or a pipeline folder of any system (t2i/registry.py)."""
    from t2i.pipelines.loading import load_pipeline as _load

    return _load(name_or_path)
