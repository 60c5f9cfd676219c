"""rover: on-robot person detection and following for the Adeept PiCar-B.

The ``rover`` package runs on the Raspberry Pi and never imports PyTorch.
Hardware libraries (RPi.GPIO, smbus2, picamera2) are imported lazily inside
their backend modules, so every module here imports on any machine.
"""

__version__ = "0.1.0"

from rover import _moved

_moved.install()
