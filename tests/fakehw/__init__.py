"""Faithful fakes of the PiCar-B's vendor libraries (RPi.GPIO, smbus2).

Two ways to use them:

- in-process: build ``RPi.GPIO.FakeGPIO`` / ``smbus2.SMBus(bus, world=...)``
  objects and pass them to ``rover.hw.open_chassis(..., gpio=, bus=)``;
- as the real module names for a subprocess: put this folder first on
  ``PYTHONPATH`` and name a state file in ``ROVER_FAKEHW_STATE``. The pins'
  and the chip's state then live in that file, so a later process (safe-stop
  after the drive was SIGKILLed) sees what an earlier one left behind, and the
  test reads the recorded history from it.
"""
