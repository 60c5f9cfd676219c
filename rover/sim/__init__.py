"""The simulated PiCar-B world: ``python -m rover.sim --scenario NAME``.

Pure physics and models (importing only numpy and the standard library):
:mod:`~rover.sim.car` (kinematics), :mod:`~rover.sim.camera` (pinhole and
cylinder), :mod:`~rover.sim.noise` (detector errors and timing),
:mod:`~rover.sim.scenarios` (data), :mod:`~rover.sim.world` (the step),
:mod:`~rover.sim.summary` (the numbers), :mod:`~rover.sim.wire` (message
formats). I/O at the edges: :mod:`~rover.sim.publisher` (the detector
process), :mod:`~rover.sim.chassis` (the drive's ``sim`` backend),
:mod:`~rover.sim.runner` (processes and sockets), :mod:`~rover.sim.plot` (PNG).
"""
