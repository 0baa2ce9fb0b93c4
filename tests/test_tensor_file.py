"""The safetensors file filled in place: it reads back with safetensors, appears only when complete."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from t2i.tensor_file import is_abandoned, writable_tensor_file


def test_a_file_filled_in_place_reads_back_with_safetensors(tmp_path) -> None:
    path = tmp_path / "table.safetensors"
    layout = {"mask": (torch.bool, (3, 5)), "tokens": (torch.float16, (3, 5, 4)), "pooled": (torch.float32, (3, 4)), "none": (torch.float32, (0, 4))}
    g = torch.Generator().manual_seed(0)
    tokens, pooled = torch.randn(3, 5, 4, generator=g).half(), torch.randn(3, 4, generator=g)
    with writable_tensor_file(path, layout, {"note": "hello"}) as table:
        assert not path.exists()  # only once complete
        (partial,) = tmp_path.iterdir()
        assert not is_abandoned(partial, min_age_s=0)  # its writer holds the lock
        assert not table["tokens"].any()  # zero-filled
        table["tokens"][[2, 0]] = tokens[[2, 0]]
        table["tokens"][1] = tokens[1]
        table["mask"][:, :3] = True
        table["pooled"][:] = pooled
    data = load_file(path)
    assert torch.equal(data["tokens"], tokens) and torch.equal(data["pooled"], pooled)
    assert data["mask"].sum() == 9 and data["mask"][:, :3].all() and data["none"].shape == (0, 4)
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"note": "hello"}
    assert [p.name for p in tmp_path.iterdir()] == ["table.safetensors"]


def test_an_error_while_filling_leaves_nothing_behind(tmp_path) -> None:
    path = tmp_path / "table.safetensors"
    with pytest.raises(RuntimeError, match="stopped"):
        with writable_tensor_file(path, {"x": (torch.float32, (2, 2))}) as table:
            table["x"][0] = 1.0
            raise RuntimeError("stopped")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="cannot store"):
        with writable_tensor_file(path, {"x": (torch.complex64, (2,))}):
            pass


def test_a_file_left_by_a_killed_writer_is_abandoned(tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    code = ("import sys, time, torch; from pathlib import Path; from t2i.tensor_file import writable_tensor_file\n"
            "with writable_tensor_file(Path(sys.argv[1]), {'x': (torch.float32, (1000,))}) as t:\n"
            "    t['x'][:10] = 1.0; print('writing', flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "table.safetensors")], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        (partial,) = tmp_path.iterdir()
        assert not is_abandoned(partial, min_age_s=0)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    deadline = time.time() + 5
    while not is_abandoned(partial, min_age_s=0) and time.time() < deadline:
        time.sleep(0.05)
    assert is_abandoned(partial, min_age_s=0) and not (tmp_path / "table.safetensors").exists()
