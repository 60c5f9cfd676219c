"""Old module paths that keep working after the package was regrouped.

rover's modules live in folders by part of the system (``rover.core``,
``rover.detector``, ``rover.hw``, ``rover.stream``, ``rover.cli``...). Code
and documentation written before the regrouping name the flat paths
(``rover.messages.decode``, ``python -m rover.bench``); :data:`MOVED` maps each
such path to the module's home, and :class:`MovedFinder` makes the old name
an alias of the *same* module object, so ``rover.messages is
rover.core.messages`` and an exception class imported either way is one
class. ``python -m <old path>`` runs the module's code as ``__main__``.

New code imports the new paths; this table only ever shrinks.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import CodeType, ModuleType

#: old dotted path -> the module's home.
MOVED: dict[str, str] = {
    # the shared foundations
    "rover.config": "rover.core.config",
    "rover.contract": "rover.core.contract",
    "rover.endpoints": "rover.core.endpoints",
    "rover.errors": "rover.core.errors",
    "rover.messages": "rover.core.messages",
    "rover.sdnotify": "rover.core.sdnotify",
    "rover.service": "rover.core.service",
    # the detector's parts
    "rover.bench": "rover.detector.bench",
    "rover.postprocess": "rover.detector.postprocess",
    "rover.preprocess": "rover.detector.preprocess",
    "rover.preview": "rover.detector.preview",
    "rover.publisher": "rover.detector.publisher",
    # the car: the seam and the tools that work on the hardware
    "rover.calibrate": "rover.hw.calibrate",
    "rover.chassis": "rover.hw.chassis",
    "rover.safestop": "rover.hw.safestop",
    # tools on the streams
    "rover.listen": "rover.stream.listen",
    "rover.record": "rover.stream.record",
    "rover.replay": "rover.stream.replay",
    # the `rover` command
    "rover.configcheck": "rover.cli.configcheck",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        # The module already ran under its own name; the alias shares it.
        return None

    def get_code(self, fullname: str) -> CodeType | None:
        # runpy (python -m OLD) asks for the code to run as __main__.
        spec = importlib.util.find_spec(self.new)
        if spec is None or spec.loader is None:
            raise ImportError(f"{fullname} moved to {self.new}, which cannot be found")
        return spec.loader.get_code(self.new)  # type: ignore[attr-defined]

    def is_package(self, fullname: str) -> bool:
        return False


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`MOVED` under their old names."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(new))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
