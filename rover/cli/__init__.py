"""The ``rover`` command: one entry point, one subcommand per tool.

A subcommand is a module with ``add_arguments(parser)`` and ``run(args) ->
int`` (the exit code) and a line in :data:`SUBCOMMANDS`. Modules are imported
only when their subcommand runs (``--help`` lists them all without importing
any), so a heavy tool never slows down another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

#: name -> (module, one-line help). Add a subcommand by adding a line here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "config": ("rover.cli.configcheck", "check a config file for every program, or print the config reference"),
    "listen": ("rover.stream.listen", "print the detection stream, one line per message"),
    "record": ("rover.stream.record", "write the detection and drive streams to a JSON-lines file"),
    "replay": ("rover.stream.replay", "publish a recorded detection stream again, with its timing"),
    "soak": ("rover.stream.soak", "run the whole system for minutes or hours with faults injected, and print its figures"),
    "capture": ("rover.stream.capture", "save camera frames for the export's int8 calibration"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rover", description="rover: on-robot tools for the Adeept PiCar-B")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, text) in SUBCOMMANDS.items():
        # add_help=False: the module's own parser (built in main) provides -h.
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv[:1])  # prints usage and exits 2 for an unknown command; help for -h
        return 2
    name, rest = argv[0], argv[1:]
    module_name, text = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"rover {name}", description=text)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return int(module.run(args))
