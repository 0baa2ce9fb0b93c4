"""Sampling options, the part every system's pipeline shares: a frozen dataclass per system whose
fields carry their command-line help and choices (the CLI makes one flag per field), and the
range checks they have in common. Light on purpose: `t2i --help` reads it without torch."""
from __future__ import annotations

from dataclasses import field, fields, replace
from typing import Any

from t2i.errors import InputError

SAMPLERS = ("ddim", "ddpm", "dpmpp-2m", "dpmpp-2m-sde", "unipc", "euler-a")  # t2i.diffusion.samplers.ALL_SAMPLERS
SPACINGS = ("uniform", "trailing", "karras")  # t2i.diffusion.solvers.SPACINGS
THRESHOLDS = ("none", "static", "dynamic")
MAX_STEPS = 1000
MAX_GUIDANCE = 50.0
MAX_CANDIDATES = 64


def stage_sampler(stage: str):
    """A stage's own sampler, overriding `sampler` for that stage (None: `sampler`)."""
    return option(None, f"the {stage}'s own sampler (default: --sampler)", SAMPLERS, kind=str)


def option(default: Any, help: str = "", choices: tuple[str, ...] | None = None, kind: type | None = None, fraction: bool = False):
    """A sampling option: its default, its --help line, its allowed values (for a string),
    where the default is None, the type of its values, and whether it is a fraction (0 to 1)."""
    return field(default=default, metadata={"help": help, "choices": choices, "kind": kind or type(default), "fraction": fraction})


def scene_reading_option():
    """How sure a scene reader (t2i/pipelines/scene_reading.py) must be to replace a prompt by the
    caption of the scene it read; every system's options have it."""
    return option(0.5, "0 to 1: how sure a scene reader's reading of a prompt must be to replace it by its caption (1: never; pipelines with a reader)",
                  fraction=True)


class SamplingOptionsBase:
    """Mixin for a frozen dataclass of sampling options, validated in its __post_init__."""

    def updated(self, **overrides: Any):
        """A copy with the given options changed; None leaves an option as it is."""
        known = {f.name for f in fields(self)}
        unknown = sorted(name for name, value in overrides.items() if name not in known and value is not None)
        if unknown:
            raise InputError(f"not an option of this pipeline: {', '.join('--' + n.replace('_', '-') for n in unknown)} "
                             f"(its options: {', '.join(sorted(known))})")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def sampler_of(self, stage: str) -> str:
        """A stage's sampler: its own `STAGE_sampler` option where set, else `sampler`."""
        return getattr(self, f"{stage}_sampler", None) or self.sampler

    def check_ranges(self) -> None:
        """The checks every system shares, by field name: *_steps, *_guidance, *_candidates,
        *sampler, *threshold, and fractions. A system's __post_init__ calls it and adds its own."""
        if getattr(self, "spacing", None) == "karras":
            for f in fields(self):
                if f.name.endswith("sampler") and getattr(self, f.name) in ("ddim", "ddpm"):
                    raise InputError(f"karras spacing sets noise levels, which {getattr(self, f.name)} does not walk"
                                     f"{'' if f.name == 'sampler' else ' (--' + f.name.replace('_', '-') + ')'}: pick a solver ({', '.join(SAMPLERS[2:])})")
        for f in fields(self):
            name, value, flag = f.name, getattr(self, f.name), f.name.replace("_", "-")
            if value is None:
                continue
            if name.endswith("_steps") and not 1 <= value <= MAX_STEPS:
                raise InputError(f"{flag} must be between 1 and {MAX_STEPS}, got {value}")
            if name.endswith("guidance") and not 0.0 <= value <= MAX_GUIDANCE:
                raise InputError(f"{flag} must be between 0 and {MAX_GUIDANCE}, got {value}")
            if name.endswith("_candidates") and not 1 <= value <= MAX_CANDIDATES:
                raise InputError(f"{flag} must be between 1 and {MAX_CANDIDATES}, got {value}")
            if f.metadata.get("fraction") and not 0.0 <= value <= 1.0:
                raise InputError(f"{flag} must be between 0 and 1, got {value}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                if len(choices) > 3:
                    raise InputError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
                raise InputError(f"{flag} must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}")
