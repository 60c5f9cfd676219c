"""Set a few ``key = value`` lines in a TOML file's text, keeping everything else (comments, order) as it is.

Pure text in, text out, for ``rover-calibrate motors --write``. Only plain
``[section]`` tables and ``key = value`` lines are understood, which is what
rover's config file is (``config/rover.example.toml``): a key already in its
section is replaced on its line (a trailing comment kept), a missing key is
added after the section's last key, a missing section is appended. The
caller checks that the result still parses.
"""

from __future__ import annotations

import re
from typing import Mapping

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)([^#]*?)(\s*#.*)?$")


def set_keys(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` with ``values[section][key]`` (a TOML literal, e.g. ``"17"``) set in each section."""
    lines = text.splitlines()
    for section, keys in values.items():
        for key, literal in keys.items():
            lines = _set_one(lines, section, key, literal)
    return "\n".join(lines) + "\n"


def _set_one(lines: list[str], section: str, key: str, literal: str) -> list[str]:
    start = end = None
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            if start is not None:
                end = i
                break
            if header.group(1) == section:
                start = i
    if start is None:
        tail = [""] if lines and lines[-1].strip() else []
        return [*lines, *tail, f"[{section}]", f"{key} = {literal}"]
    end = len(lines) if end is None else end
    last_key = start
    for i in range(start + 1, end):
        match = _KEY.match(lines[i])
        if match and match.group(2) == key:
            indent, _, equals, _, comment = match.groups()
            lines = list(lines)
            lines[i] = f"{indent}{key}{equals}{literal}{comment or ''}"
            return lines
        if match:
            last_key = i
    return [*lines[:last_key + 1], f"{key} = {literal}", *lines[last_key + 1:]]
