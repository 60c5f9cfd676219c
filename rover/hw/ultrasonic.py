"""HC-SR04 ultrasonic range finder: timing an echo pulse, in a background thread.

A measurement: a >= 10 us HIGH pulse on the trigger pin makes the sensor send
a 40 kHz burst and then hold its echo pin HIGH for the sound's round trip, so
``distance = echo pulse time * 343 m/s / 2``. The echo is timed by polling the
pin against the injected clock, with a bound on every wait, so a missing or
stuck echo costs at most a few milliseconds and never hangs.

:class:`UltrasonicRanger` measures a few times per second in its own thread;
the drive loop only calls :meth:`UltrasonicRanger.distance_m`, which returns
the newest valid reading at once (or None when there is none recent enough).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)

SPEED_OF_SOUND_M_S = 343.0
#: Trigger pulse length; the datasheet asks for at least 10 us.
TRIGGER_PULSE_S = 12e-6
#: The echo rises ~0.5 ms after the trigger (after the 8-cycle 40 kHz burst);
#: no rise within 5 ms means no sensor answered.
ECHO_START_TIMEOUT_S = 0.005
#: The HC-SR04 datasheet's measurement cycle: wait this long before a retry so
#: the previous burst's late echoes have died down.
RETRY_GAP_S = 0.06


def echo_distance_m(pulse_s: float, max_m: float) -> float | None:
    """Distance in metres for an echo pulse of ``pulse_s`` seconds, or None if invalid.

    Readings above ``max_m`` (the vendor uses 9 m) or from a non-positive
    pulse are noise, not distances.
    """
    if pulse_s <= 0.0:
        return None
    distance = pulse_s * SPEED_OF_SOUND_M_S / 2.0
    return distance if distance <= max_m else None


class HCSR04:
    """One sensor on two GPIO pins (already set up: trigger OUT low, echo IN)."""

    def __init__(self, gpio: Any, trigger_pin: int, echo_pin: int, *, clock: Callable[[], float] = time.monotonic,
                 timeout_s: float = 0.06, max_m: float = 9.0) -> None:
        self._gpio = gpio
        self.trigger_pin = trigger_pin
        self.echo_pin = echo_pin
        self._clock = clock
        self.timeout_s = timeout_s
        self.max_m = max_m

    def measure(self) -> float | None:
        """One measurement in metres, or None (no echo, echo too long, or out of range).

        Takes at most ``ECHO_START_TIMEOUT_S + timeout_s`` of clock time.
        """
        gpio, clock = self._gpio, self._clock
        if gpio.input(self.echo_pin):
            return None  # still high from an earlier burst (or stuck): this reading would be garbage
        gpio.output(self.trigger_pin, 1)
        start = clock()
        while clock() - start < TRIGGER_PULSE_S:
            pass  # a busy wait: time.sleep() cannot time 10 us
        gpio.output(self.trigger_pin, 0)
        sent = clock()
        while True:
            level = gpio.input(self.echo_pin)
            now = clock()
            if level:
                rise = now
                break
            if now - sent > ECHO_START_TIMEOUT_S:
                return None
        while True:
            level = gpio.input(self.echo_pin)
            now = clock()
            if not level:
                return echo_distance_m(now - rise, self.max_m)
            if now - rise > self.timeout_s:
                return None


class UltrasonicRanger:
    """Measures with ``sensor`` every ``interval_s`` in a daemon thread; never blocks its reader."""

    def __init__(self, sensor: HCSR04, *, clock: Callable[[], float] = time.monotonic, interval_s: float = 0.2,
                 retries: int = 3, stale_s: float = 1.0, retry_gap_s: float = RETRY_GAP_S) -> None:
        self._sensor = sensor
        self._clock = clock
        self.interval_s = interval_s
        self.retries = retries
        self.stale_s = stale_s
        self.retry_gap_s = retry_gap_s
        self._lock = threading.Lock()
        self._reading: tuple[float, float] | None = None  # (clock time, metres)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Measurements that yielded no valid distance after every retry.
        self.misses = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rover-ultrasonic", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop measuring; waits at most ``timeout_s`` for a measurement in progress."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def distance_m(self) -> float | None:
        """The newest valid distance in metres, or None if there is none younger than ``stale_s``."""
        with self._lock:
            reading = self._reading
        if reading is None:
            return None
        taken, metres = reading
        if self._clock() - taken > self.stale_s:
            return None
        return metres

    def read(self) -> float | None:
        """Up to ``retries`` measurements, ``retry_gap_s`` apart; the first valid one, else None."""
        for attempt in range(self.retries):
            distance = self._sensor.measure()
            if distance is not None:
                return distance
            if attempt + 1 < self.retries and self._stopping.wait(self.retry_gap_s):
                break
        return None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                distance = self.read()
            except Exception as exc:  # noqa: BLE001 - a GPIO error ends the thread; readings go stale (None)
                log.error("ultrasonic measurement failed, range now unknown: %s", exc)
                return
            if distance is None:
                self.misses += 1
            else:
                with self._lock:
                    self._reading = (self._clock(), distance)
            self._stopping.wait(self.interval_s)
