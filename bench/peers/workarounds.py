"""What the peers need to import and run offline, on a CPU-only torch. Each fix says why.

`apply()` must run before the first import of torchvision, diffusers, dalle2_pytorch or
imagen_pytorch; it is idempotent and touches nothing outside this process's sys.modules.
Nothing here changes what a peer computes: the stubs stand in for code paths the benchmark
never reaches (torchvision's meta kernels for its detection ops, T5 download).
"""
from __future__ import annotations

import importlib.util
import sys
import types

WORKAROUNDS = {
    "torchvision-meta-stub": (
        "PyPI's torchvision 0.28.0 for torch 2.13.0 is a CUDA build; beside the CPU torch its "
        "`torchvision._meta_registrations` fails at import (`operator torchvision::nms does not exist`), "
        "which breaks `import torchvision` and with it diffusers, dalle2-pytorch and imagen-pytorch. "
        "The peers only use torchvision.transforms, so an empty module stands in for the meta "
        "registrations (fake-tensor kernels for nms/roi_align, never called here)."
    ),
    "imagen-t5-config-seed": (
        "imagen-pytorch 2.1.0 evaluates `get_encoded_dim('google/t5-v1_1-base')` as a default argument "
        "of `Unet.__init__` and in its configs module, i.e. at import time, and that fetches the T5 "
        "config from the model hub: no network here, so the import fails. The module-level cache "
        "`imagen_pytorch.t5.T5_CONFIGS` is seeded with a local T5Config of t5-v1_1-base's shape "
        "(d_model 768) before the package body runs; the harness always passes `text_embed_dim=384` "
        "explicitly, so the seeded value is never used for a model, and T5 itself is never loaded "
        "(the text comes in as precomputed MiniLM token states)."
    ),
    "imagen-unets-list": (
        "Not an import problem but a use one: imagen-pytorch's `Imagen.get_unet` replaces its `unets` "
        "ModuleList by a plain list on the first forward, after which `Imagen.parameters()` is empty. The "
        "harness therefore builds the optimiser from, clips and counts the parameters of the Unet itself "
        "(systems.System.trainable), for every system alike."
    ),
    "hub-offline": (
        "HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1: any other hub look-up fails at once instead of "
        "retrying for ~30 s against a network that is not there."
    ),
}

_applied = False


def apply() -> list[str]:
    """Install the workarounds in this process; returns the names of those applied."""
    global _applied
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_NO_ADVISORY_WARNINGS", "1")
    if _applied:
        return list(WORKAROUNDS)
    if importlib.util.find_spec("torchvision") is not None and "torchvision" not in sys.modules:
        sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    if importlib.util.find_spec("imagen_pytorch") is not None and "imagen_pytorch" not in sys.modules:
        _seed_t5_configs()
    _applied = True
    return list(WORKAROUNDS)


def _seed_t5_configs() -> None:
    """Run imagen_pytorch/t5.py alone (its package __init__ would import the Unet and hit the
    hub), seed its cache, and leave it in sys.modules for the real package import to reuse."""
    from transformers import T5Config

    spec = importlib.util.find_spec("imagen_pytorch")
    package = types.ModuleType("imagen_pytorch")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["imagen_pytorch"] = package
    try:
        import imagen_pytorch.t5 as t5

        # google/t5-v1_1-base's encoder width; only its d_model is ever read (get_encoded_dim).
        t5.T5_CONFIGS.setdefault(t5.DEFAULT_T5_NAME, {"config": T5Config(d_model=768, d_ff=2048, d_kv=64, num_heads=12,
                                                                          num_layers=12, feed_forward_proj="gated-gelu")})
    finally:
        del sys.modules["imagen_pytorch"]  # the real package body runs on the next import
