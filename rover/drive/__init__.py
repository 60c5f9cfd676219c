"""rover.drive: follow a detected object with the car.

Pure parts (no I/O, numpy/stdlib only): :mod:`~rover.drive.tracker` (target
lock), :mod:`~rover.drive.control` (steering PD, speed law, latency scaling,
ramps), :mod:`~rover.drive.states` (state machine),
:mod:`~rover.drive.status` (drive status message) and
:mod:`~rover.drive.labels`. I/O at the edges: :mod:`~rover.drive.receiver`
(ZeroMQ sockets; its :class:`~rover.drive.receiver.MessageGate` is pure) and
:mod:`~rover.drive.loop` (the main loop, everything injected).
"""
