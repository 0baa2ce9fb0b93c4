"""A progress bar for image generation (tqdm), quiet when stderr is not a terminal."""
from __future__ import annotations

import sys

from tqdm import tqdm


class StepBar(tqdm):
    def __init__(self, *, total: int, desc: str, unit: str = "it") -> None:
        super().__init__(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), dynamic_ncols=True)
