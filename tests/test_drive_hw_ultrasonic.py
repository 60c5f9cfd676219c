"""HC-SR04 timing and the background ranger, on the fake board with an exact clock."""

from __future__ import annotations

import math
import threading

import pytest

from rover.hw.ultrasonic import ECHO_START_TIMEOUT_S, HCSR04, UltrasonicRanger, echo_distance_m
from tests.fakehw.fakeclock import TickClock
from tests.fakehw.RPi.GPIO import Board, FakeGPIO, FakeHCSR04

TRIG, ECHO = 11, 8


def rig(distance: float | None, timeout_s: float = 0.06) -> tuple[TickClock, FakeHCSR04, FakeGPIO, HCSR04]:
    clock = TickClock(step=1e-6)
    board = Board(clock=clock)
    sonar = board.attach(FakeHCSR04(TRIG, ECHO, distance))
    gpio = FakeGPIO(board)
    gpio.setmode(gpio.BCM)
    gpio.setup(TRIG, gpio.OUT, initial=gpio.LOW)
    gpio.setup(ECHO, gpio.IN)
    return clock, sonar, gpio, HCSR04(gpio, TRIG, ECHO, clock=clock, timeout_s=timeout_s, max_m=9.0)


def test_distance_is_half_the_round_trip_at_343_m_s() -> None:
    assert echo_distance_m(0.01, 9.0) == pytest.approx(1.715)
    assert echo_distance_m(0.06, 9.0) == math.inf  # 10.3 m: beyond max_m, nothing in range ("far", not unknown)
    assert echo_distance_m(0.0, 9.0) is None


@pytest.mark.parametrize("metres", [0.05, 0.5, 2.0])
def test_a_measurement_reads_the_obstacle_distance(metres: float) -> None:
    _clock, sonar, _gpio, sensor = rig(metres)
    assert sensor.measure() == pytest.approx(metres, abs=0.005)
    assert sonar.triggers == 1  # the trigger pulse was long enough for the sensor


def test_a_missing_echo_times_out_quickly_and_yields_none() -> None:
    clock, _sonar, _gpio, sensor = rig(None)
    before = clock.peek()
    assert sensor.measure() is None
    assert clock.peek() - before < ECHO_START_TIMEOUT_S + 0.001


def test_an_echo_longer_than_the_timeout_reads_far_within_the_timeout() -> None:
    clock, _sonar, _gpio, sensor = rig(8.0, timeout_s=0.02)  # 47 ms echo: it rose, nothing came back in time
    before = clock.peek()
    assert sensor.measure() == math.inf
    assert clock.peek() - before < 0.02 + ECHO_START_TIMEOUT_S


def test_an_echo_already_high_is_unknown_not_far() -> None:
    _clock, _sonar, gpio, sensor = rig(1.0)

    class Stuck:  # the echo line held high (a stuck sensor, a short to 3.3 V)
        def __getattr__(self, name):
            return getattr(gpio, name)

        def input(self, pin):
            return 1 if pin == ECHO else gpio.input(pin)

    sensor._gpio = Stuck()
    assert sensor.measure() is None


def test_on_the_2024_kit_nothing_within_2_m_reads_far_and_the_median_is_inf() -> None:
    """max_m = 2 m (the vendor's): an open room reads inf, so the drive moves; unplugged reads None."""
    clock = TickClock(step=1e-6)
    board = Board(clock=clock)
    board.attach(FakeHCSR04(TRIG, ECHO, 3.5))  # a wall 3.5 m away: a 20 ms echo, beyond 2 m
    gpio = FakeGPIO(board)
    gpio.setmode(gpio.BCM)
    gpio.setup(TRIG, gpio.OUT, initial=gpio.LOW)
    gpio.setup(ECHO, gpio.IN)
    sensor = HCSR04(gpio, TRIG, ECHO, clock=clock, timeout_s=0.06, max_m=2.0)
    ranger = UltrasonicRanger(sensor, clock=clock, retries=1, retry_gap_s=0.0)
    for _ in range(3):
        ranger.add(ranger.read())
    assert ranger.distance_m() == math.inf


def test_the_ranger_never_blocks_and_reports_none_without_a_sensor() -> None:
    clock, _sonar, _gpio, sensor = rig(None)
    ranger = UltrasonicRanger(sensor, clock=clock, interval_s=0.01, retries=2, retry_gap_s=0.001)
    ranger.start()
    try:
        assert ranger.distance_m() is None  # answered at once while the thread measures
        deadline = threading.Event()
        for _ in range(500):
            if ranger.misses >= 2:
                break
            deadline.wait(0.01)
        assert ranger.misses >= 2 and ranger.distance_m() is None
    finally:
        ranger.stop()


def test_retries_take_the_first_valid_reading() -> None:
    clock, sonar, _gpio, sensor = rig(None)
    outcomes = iter([None, None, 0.7])

    class Flaky:
        def measure(self) -> float | None:
            return next(outcomes)

    ranger = UltrasonicRanger(Flaky(), clock=clock, retries=3, retry_gap_s=0.0)  # type: ignore[arg-type]
    assert ranger.read() == 0.7


def test_a_reading_goes_stale() -> None:
    clock, sonar, _gpio, sensor = rig(1.2)
    ranger = UltrasonicRanger(sensor, clock=clock, interval_s=0.01, stale_s=0.5)
    ranger.start()
    try:
        for _ in range(500):
            if ranger.distance_m() is not None:
                break
            threading.Event().wait(0.01)
        assert ranger.distance_m() == pytest.approx(1.2, abs=0.005)
    finally:
        ranger.stop()
    clock.advance(0.6)
    assert ranger.distance_m() is None
