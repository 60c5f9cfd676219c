"""Typed configuration from one TOML file.

Every program reads the same file (default ``/etc/rover/rover.toml``; the
documented example is ``config/rover.example.toml``). Each program owns one or
more *sections*, each described by a frozen dataclass whose fields carry a
default and a one-line description (``field(metadata={"doc": ...})``).

Loading is strict, as Frigate's config is: an unknown section or key is
refused with its dotted name, and a value of the wrong type is refused with the
expected type. Command-line flags override the file through
:func:`with_overrides`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, get_args, get_origin

from rover.core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/rover/rover.toml")

#: Every top-level table a rover config file may have. A program validates
#: the sections it owns and only checks that the others are known names.
KNOWN_SECTIONS = ("detector", "camera", "stream", "drive", "picar_b", "picar_b2", "view", "sim")

T = TypeVar("T")


def doc(text: str, default: Any = dataclasses.MISSING, **kwargs: Any) -> Any:
    """A dataclass field with a default and a description for the reference."""
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"doc": text}, **kwargs)
    return dataclasses.field(default=default, metadata={"doc": text}, **kwargs)


def default_config_path() -> Path | None:
    """:data:`DEFAULT_CONFIG_PATH` when it exists (or cannot even be looked at), else None: built-in defaults.

    A file this user may not look into (``/etc/rover`` is ``root:rover 0750``)
    is returned, so reading it fails with one line saying so instead of the
    defaults being used silently.
    """
    try:
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None
    except PermissionError:
        return DEFAULT_CONFIG_PATH


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file raises ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: create it from config/rover.example.toml or pass --config") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable by this user: fix its permissions") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory: pass the TOML file itself with --config") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror or exc}): pass a readable TOML file with --config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc}): save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = [key for key in data if key not in KNOWN_SECTIONS]
    if unknown:
        raise ConfigError(
            f"unknown section [{unknown[0]}] in {path}: known sections are {', '.join(KNOWN_SECTIONS)}"
        )
    return data


def load_sections(path: Path | None, sections: Mapping[str, type[T]]) -> dict[str, T]:
    """Build each requested section from the file at ``path``.

    ``path=None`` gives the documented defaults. Sections the file does not
    have also take their defaults.
    """
    data = read_toml(path) if path is not None else {}
    where = f" in {path}" if path is not None else ""
    return {name: from_dict(cls, data.get(name, {}), name, where) for name, cls in sections.items()}


def from_dict(cls: type[T], data: Any, prefix: str, where: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, strictly."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix} must be a table{where}, not {_type_name(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    removed = getattr(cls, "REMOVED_KEYS", {})
    for key in data:
        if key not in fields and key in removed:
            raise ConfigError(f"{prefix}.{key}{where} was removed: use {removed[key]}")
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown key {prefix}.{key}{where}: known keys are {known}")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{prefix}.{name}", where)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}{where}: {exc}") from None


def with_overrides(config: T, **overrides: Any) -> T:
    """Return ``config`` with the non-None ``overrides`` applied (CLI flags)."""
    changes = {key: value for key, value in overrides.items() if value is not None}
    if not changes:
        return config
    hints = typing.get_type_hints(type(config))
    for key, value in changes.items():
        if key not in hints:
            raise ConfigError(f"unknown setting {key}")
        changes[key] = _coerce(hints[key], value, f"--{key.replace('_', '-')}", "")
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def reference(sections: Mapping[str, type]) -> str:
    """A Markdown table of every key, its type, default and description."""
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = "(required)"
            if isinstance(default, bool):
                shown = "true" if default else "false"  # TOML spelling
            elif isinstance(default, Path):
                shown = f'"{default}"'
            else:
                shown = "(unset)" if default is None else repr(default).replace("'", '"')
            text = f.metadata.get("doc", "")
            lines.append(f"| `{section}.{f.name}` | {_hint_name(hints[f.name])} | `{shown}` | {text} |")
    return "\n".join(lines)


def _coerce(hint: Any, value: Any, name: str, where: str) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, name, where)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{name}{where} must be {_hint_name(hint)}, not {_type_name(value)}")
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{name}{where} must be one of {choices}, not {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}{where} must be a list, not {_type_name(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{name}{where} must have {len(args)} items, not {len(value)}")
            return tuple(_coerce(a, v, f"{name}[{i}]", where) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{name}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(hint, value, name, where)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML has inf and nan literals: no setting means either
                raise ConfigError(f"{name}{where} must be a finite number, not {value!r}")
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
    else:  # pragma: no cover - a programming error in a config dataclass
        raise TypeError(f"unsupported config type {hint!r} for {name}")
    raise ConfigError(f"{name}{where} must be {_hint_name(hint)}, not {_type_name(value)} {value!r}")


def _hint_name(hint: Any) -> str:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else ""
        )
    if origin is Literal:
        return " / ".join(repr(a).replace("'", '"') for a in args)
    if origin in (list, tuple):
        return f"list of {_hint_name(args[0])}" if args else "list"
    if hint is Path:
        return "path"
    return getattr(hint, "__name__", str(hint))


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
