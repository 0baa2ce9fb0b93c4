"""The prompts that evaluation asks and training must never see, and the form they are compared in."""
from __future__ import annotations

import functools
import json
from pathlib import Path

EVALUATION_PROMPTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "prompts"


@functools.cache
def evaluation_prompts() -> frozenset[str]:
    """Every prompt of the checked-in evaluation and development sets, normalised: what
    augmentation must never make."""
    return frozenset(normalize_prompt(json.loads(line)["prompt"]) for path in sorted(EVALUATION_PROMPTS_DIR.glob("*.jsonl"))
                     for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def normalize_prompt(text: str) -> str:
    """The form in which prompts and captions are compared: lower case, single spaces, no
    trailing full stop, exclamation or question mark."""
    return " ".join(text.lower().split()).rstrip(".!?").strip()
