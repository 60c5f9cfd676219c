"""Offline export of the SSD300 detector to the rover model contract.

Runs on a laptop with PyTorch (the ``export`` extra), never on the robot:
loads the author's checkpoint, writes a float32 and an int8 ONNX model that
satisfy :mod:`rover.core.contract`, and a report of how far the int8 model strays
from the float one. ``python -m export --help`` for the command line.
"""

#: Version of the exporter, written into every model's ``exporter_version``
#: metadata so a model file tells which exporter produced it.
__version__ = "0.1.0"
