"""``rover config``: check a config file for every program at once, or print the reference.

Each program validates only its own sections when it starts, so a typo in
``[drive]`` would otherwise surface only when the drive starts. ``rover config
check`` loads every section of the file, strictly, the way each program will,
before a service is restarted::

    rover config check                      # /etc/rover/rover.toml
    rover config check --config my.toml
    rover config reference                  # the Markdown table in the README
    rover config reference --write README.md   # refresh it between the README's markers

Exit codes: 0 the file is valid, 78 it is not (one line naming the key and
the fix).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Mapping

from rover.core.config import DEFAULT_CONFIG_PATH, load_sections, reference
from rover.core.errors import EXIT_CONFIG, EXIT_OK, ConfigError

#: section -> "module:dataclass", in the order of the example file. Imported
#: only when needed, so checking a file never loads a model or a GPIO library.
SECTION_CLASSES: dict[str, str] = {
    "detector": "rover.detector.config:DetectorSection",
    "camera": "rover.detector.config:CameraSection",
    "stream": "rover.detector.config:StreamSection",
    "drive": "rover.drive.config:DriveConfig",
    "picar_b": "rover.hw.config:PicarBConfig",
    "picar_b2": "rover.hw.config_b2:PicarB2Config",
    "view": "rover.view.config:ViewSection",
}


def all_sections() -> Mapping[str, type]:
    """Every config section's dataclass, by section name."""
    out: dict[str, type] = {}
    for name, spec in SECTION_CLASSES.items():
        module, attr = spec.split(":")
        out[name] = getattr(importlib.import_module(module), attr)
    return out


#: The README's reference table sits between these two lines.
MARKERS = ("<!-- rover config reference: start -->", "<!-- rover config reference: end -->")


def write_reference(path: Path, table: str) -> None:
    """Replace the text between :data:`MARKERS` in ``path`` with ``table``."""
    text = path.read_text()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        raise ConfigError(f"{path} has no '{MARKERS[0]}' ... '{MARKERS[1]}' lines to write the reference between")
    path.write_text(text[: start + len(MARKERS[0])] + "\n" + table + "\n" + text[end:])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "reference"), help="check a file, or print the reference table")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help=f"TOML file to check (default {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN",
                        help="reference: write the table into this file between its marker lines")


def run(args: argparse.Namespace) -> int:
    sections = all_sections()
    try:
        if args.action == "reference":
            table = reference(sections)
            if args.write is None:
                print(table)
            else:
                write_reference(args.write, table)
            return EXIT_OK
        load_sections(args.config, sections)
    except ConfigError as exc:
        print(f"rover config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{args.config}: valid ({', '.join(f'[{name}]' for name in sections)} checked; absent keys take their defaults)")
    return EXIT_OK
