"""bench/stage_cost.py on the tiny models: FLOPs and interleaved seconds of training steps."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


def test_a_stage_is_named_with_its_preset_and_needs():
    import stage_cost

    assert stage_cost.parse_stage("decoder@shapes:clip=runs/c") == ("decoder", "shapes", {"clip": "runs/c"})
    assert stage_cost.parse_stage("imagen-base@imagen-shapes") == ("imagen-base", "imagen-shapes", {})
    with pytest.raises(SystemExit):
        stage_cost.parse_stage("decoder")


def test_a_step_trains_and_its_flops_are_counted(tiny_run, tmp_path):
    import stage_cost

    step = stage_cost.StageStep("imagen-base@tiny", str(tiny_run.data), tmp_path / "run")
    before = [p.detach().clone() for p in step.trainer.model.parameters()]
    flops = step.flops()  # counted on a real step: the step `t2i train` takes
    assert flops > 0 and step.trainer.step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, step.trainer.model.parameters()))
    again = stage_cost.StageStep("imagen-base@tiny", str(tiny_run.data), tmp_path / "again")
    assert again.flops() == flops  # the same seed draws the same first batch
    step.step()
    assert step.trainer.step == 2


def test_the_table_gives_ratios_to_the_first_stage(tiny_run, tmp_path, monkeypatch):
    import stage_cost

    decoder = f"decoder@tiny:clip={tiny_run.run('clip')}"
    out = tmp_path / "cost.json"
    argv = ["stage_cost.py", "--data", str(tiny_run.data), "--rounds", "2", "--steps", "1", "--json", str(out), decoder, "clip@tiny", decoder]
    monkeypatch.setattr(sys, "argv", argv)
    assert stage_cost.main() == 0
    rows = json.loads(out.read_text())["stages"]
    assert [r["stage"] for r in rows] == ["decoder@tiny", "clip@tiny", "decoder@tiny"]
    assert rows[0]["flop_ratio"] == rows[2]["flop_ratio"] == 1.0  # the same stage costs the same FLOPs
    assert rows[1]["flop_ratio"] != 1.0 and rows[1]["gflop_per_step"] > 0
    assert rows[0]["time_ratio"] == 1.0 and all(len(r["step_s_all"]) == 2 and r["step_s"] > 0 for r in rows)
