"""Tests run on the CPU with one thread each and their own text-encoding cache."""
import os

import pytest
import torch
from tiny import tiny_imagen, tiny_run  # noqa: F401  (the session's tiny trained models, fixtures for every module)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("T2I_CACHE", str(tmp_path_factory.getbasetemp() / "t2i-cache"))
    os.environ.pop("T2I_DEBUG", None)
