"""scripts/compare_prompt_evals.py: two evals of the same paraphrases, compared prompt by prompt."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "compare_prompt_evals.py"


def _script():
    spec = importlib.util.spec_from_file_location("compare_prompt_evals", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, passes: list[tuple[str, float, float]]) -> Path:
    rows = [{"prompt": f"p{i}", "canonical": "c", "task": task, "paraphrase_pass": p, "canonical_pass": c} for i, (task, p, c) in enumerate(passes)]
    path.write_text(json.dumps({"per_prompt": rows}), encoding="utf-8")
    return path


def test_pairs_are_pooled_and_compared_prompt_by_prompt(tmp_path: Path) -> None:
    compare = _script()
    before = _write(tmp_path / "a.json", [("colors", 0.5, 1.0), ("colors", 1.0, 1.0), ("counting", 0.25, 0.75)])
    after = _write(tmp_path / "b.json", [("colors", 1.0, 1.0), ("colors", 1.0, 1.0), ("counting", 0.25, 0.5)])
    rows_a, rows_b = compare.load_pairs([before, after, before, after])  # the same pair twice: pooled, 6 prompts
    assert len(rows_a) == len(rows_b) == 6
    lines = compare.compare(rows_a, rows_b)
    assert lines[0] == "| after − before | counting | colors | overall |"
    paraphrases, canonical = lines[2], lines[3]
    assert paraphrases.startswith("| paraphrases | +0.000 (+0.000 to +0.000) | +0.250 (")  # colours: +0.5 on one of two prompts
    assert canonical.startswith("| canonical | -0.250 (-0.250 to -0.250) | +0.000")
    assert lines[-2] == "| after: paraphrases / canonical | 0.250 / 0.500 | 1.000 / 1.000 | 0.750 / 0.833 |"
    assert lines[-1] == "| after: gap | -0.250 | +0.000 | -0.083 |"


def test_files_of_different_prompts_are_refused(tmp_path: Path) -> None:
    compare = _script()
    before = _write(tmp_path / "a.json", [("colors", 0.5, 1.0)])
    after = _write(tmp_path / "b.json", [("colors", 0.5, 1.0), ("colors", 1.0, 1.0)])
    with pytest.raises(SystemExit, match="graded different prompts"):
        compare.load_pairs([before, after])
    with pytest.raises(SystemExit, match="in pairs"):
        compare.load_pairs([before])
