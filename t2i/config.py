"""Typed configs: frozen dataclasses that refuse unknown or ill-typed keys when read from JSON."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from t2i.errors import InputError

C = TypeVar("C")


class ConfigError(InputError):
    """A config that cannot be used; the message says which key and why."""


def config_from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build dataclass `cls` from a JSON-like dict; lists become tuples where the field is a tuple."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        try:
            kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
        except ConfigError:
            must_be = fields[name].metadata.get("must_be")  # a field that describes its values says so
            if must_be is None:
                raise
            raise ConfigError(f"{where}.{name} must be {must_be}, got {value!r}") from None
    try:
        return cls(**kwargs)
    except TypeError as e:  # a missing required field
        raise ConfigError(f"{where}: {e}") from None
    except ConfigError:
        raise
    except InputError as e:  # a value the dataclass itself refuses (its __post_init__)
        raise ConfigError(f"{where}: {e}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(item, v, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {value!r}")
        return value
    return value


def check_sizes(config: Any, *, at_least_1: tuple[str, ...] = (), at_least_0: tuple[str, ...] = ()) -> None:
    """Size fields of a model config (a tuple field: each of its entries): >= 1, or >= 0 where 0
    turns a part off. A zero width would otherwise build a model that fails far from the cause."""
    for names, low in ((at_least_1, 1), (at_least_0, 0)):
        for name in names:
            value = getattr(config, name)
            for v in value if isinstance(value, tuple) else (value,):
                if not isinstance(v, int) or isinstance(v, bool) or v < low:
                    raise ConfigError(f"{type(config).__name__}.{name} must be a whole number >= {low}, got {value!r}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """Dataclass -> JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
