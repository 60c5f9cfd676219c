"""The ZeroMQ sim chassis stamps a range with the world's measurement time, not its arrival (review 3, L5)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import zmq

from rover.hw.config import PicarBConfig
from rover.sim.chassis import SimChassis
from rover.sim.wire import encode_range


def test_readings_measured_long_ago_are_stale_however_late_they_arrive(tmp_path: Path) -> None:
    context = zmq.Context()
    commands, ranges = context.socket(zmq.PULL), context.socket(zmq.PUB)
    commands.bind(f"ipc://{tmp_path}/commands")
    ranges.bind(f"ipc://{tmp_path}/ranges")
    config = dataclasses.replace(PicarBConfig(), ultrasonic_stale_s=0.3)
    chassis = SimChassis(config, endpoint=f"ipc://{tmp_path}/commands", context=context, ranges=f"ipc://{tmp_path}/ranges")
    try:
        deadline = time.monotonic() + 10.0
        while chassis.distance_m() is None and time.monotonic() < deadline:  # the subscription is up
            ranges.send(encode_range(1.5, time.monotonic_ns()))
            time.sleep(0.01)
        time.sleep(0.4)
        assert chassis.distance_m() is None  # those went stale
        measured = time.monotonic_ns() - 1_000_000_000  # measured 1 s ago, delivered now (a backed-up queue)
        for i in range(3):
            ranges.send(encode_range(0.8, measured + i))
        time.sleep(0.05)
        assert chassis.distance_m() is None, "a reading measured 1 s ago counted as fresh"
        reading = chassis.ranger.newest_s()
        assert reading == pytest.approx(measured / 1e9 + 2e-9, abs=1e-6)
    finally:
        chassis.close()
        commands.close(0)
        ranges.close(0)
        context.term()
