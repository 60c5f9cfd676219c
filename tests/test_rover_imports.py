"""The on-robot package never pulls in PyTorch (a Pi installs no torch), nor hardware libraries at import."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import rover
names = [m.name for m in pkgutil.walk_packages(rover.__path__, "rover.")]
for name in names:
    importlib.import_module(name)
print(len(names))
print(sorted(m for m in ("torch", "torchvision", "RPi", "RPi.GPIO", "smbus2", "picamera2") if m in sys.modules))
"""


def test_importing_every_rover_module_loads_neither_torch_nor_a_hardware_library() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    count, loaded = proc.stdout.split("\n")[:2]
    assert int(count) > 40  # every module was imported, not an empty walk
    assert loaded == "[]"
