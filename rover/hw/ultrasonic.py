"""HC-SR04 ultrasonic range finder: timing an echo pulse, in a background thread.

A measurement: a >= 10 us HIGH pulse on the trigger pin makes the sensor send
a 40 kHz burst and then hold its echo pin HIGH for the sound's round trip, so
``distance = echo pulse time * 343 m/s / 2``. The echo is timed by polling the
pin against the injected clock, with a bound on every wait, so a missing or
stuck echo costs at most a few milliseconds and never hangs.

:class:`UltrasonicRanger` measures a few times per second in its own thread;
the drive loop only calls :meth:`UltrasonicRanger.distance_m`, which returns
the median of the latest valid readings at once (or None when there are not
enough recent ones).

Why a median: the echo is timed by polling from Python, so the falling edge is
seen late whenever this thread is not running (the GIL's 5 ms switch
interval, the detector busy on every core): each millisecond late reads
0.17 m farther, the unsafe side for a bumper. A late reading is an outlier
against its neighbours; the median of ``samples`` readings drops it unless
most of them are late. docs/hardware.md states the error that remains.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Callable

from rover.core.errors import ConfigError, HardwareError

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
    """Distance in metres for an echo pulse of ``pulse_s`` seconds; ``math.inf`` beyond ``max_m``.

    Beyond ``max_m`` (the vendor uses 9 m; 2 m on the 2024 kit) nothing is
    in range: a valid "far", not a failure. A non-positive pulse is noise (None).
    """
    if pulse_s <= 0.0:
        return None
    distance = pulse_s * SPEED_OF_SOUND_M_S / 2.0
    return distance if distance <= max_m else math.inf


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
        """One measurement in metres; ``math.inf`` when nothing is in range; None when it failed.

        Far (``inf``): the echo rose and lasted beyond ``max_m`` or beyond
        ``timeout_s`` (the sensor's own "no echo came back" pulse). Failed
        (None, "unknown"): the echo was already high (stuck, or a previous
        burst) or never rose (no sensor answering: unplugged, unpowered).

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
                return math.inf  # the echo rose and nothing came back within range


class UltrasonicRanger:
    """Measures with ``sensor`` every ``interval_s`` in a daemon thread; never blocks its reader."""

    def __init__(self, sensor: HCSR04, *, clock: Callable[[], float] = time.monotonic, interval_s: float = 0.1,
                 retries: int = 3, stale_s: float = 1.0, retry_gap_s: float = RETRY_GAP_S, samples: int = 3) -> None:
        self._sensor = sensor
        self._clock = clock
        self.interval_s = interval_s
        self.retries = retries
        self.stale_s = stale_s
        self.retry_gap_s = retry_gap_s
        self.samples = samples
        self._lock = threading.Lock()
        self._readings: deque[tuple[float, float]] = deque(maxlen=samples)  # (clock time, metres), newest last
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
        """Median of the latest ``samples`` valid readings younger than ``stale_s``, in metres.

        None unless a majority of ``samples`` is that fresh, so one reading
        (maybe a late one) never decides alone. With an even count the nearer
        middle value is taken (the safe side).
        """
        reading = self.reading()
        return None if reading is None else reading[0]

    def reading(self) -> tuple[float, float] | None:
        """``(metres, taken)``: :meth:`distance_m`'s value and the clock time that measurement was taken.

        A caller that must know where the car is *now* (rover-calibrate
        motors' stop margin) takes the reading's real age from ``taken``
        instead of assuming one read interval.
        """
        now = self._clock()
        with self._lock:
            fresh = sorted((metres, taken) for taken, metres in self._readings if now - taken <= self.stale_s)
        if len(fresh) < self.samples // 2 + 1:
            return None
        return fresh[(len(fresh) - 1) // 2]

    def newest_s(self) -> float | None:
        """When the newest valid reading was taken (fresh or not); None before the first."""
        newest = self.newest()
        return None if newest is None else newest[1]

    def newest(self) -> tuple[float, float] | None:
        """``(metres, taken)`` of the newest valid reading alone (no median: it may be a late one); None before
        the first."""
        with self._lock:
            return (self._readings[-1][1], self._readings[-1][0]) if self._readings else None

    def period_max_s(self) -> float:
        """The longest one turn of the measuring loop takes: every retry failing at its timeouts, then the interval."""
        attempt = TRIGGER_PULSE_S + ECHO_START_TIMEOUT_S + self._sensor_timeout_s()
        return self.interval_s + self.retries * attempt + (self.retries - 1) * self.retry_gap_s

    def _sensor_timeout_s(self) -> float:
        return float(getattr(self._sensor, "timeout_s", 0.06))

    def add(self, metres: float, taken: float | None = None) -> None:
        """Record one valid reading taken at ``taken`` (default: now on the ranger's clock; the thread adds so)."""
        with self._lock:
            self._readings.append((self._clock() if taken is None else taken, metres))

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
                self.add(distance)
            self._stopping.wait(self.interval_s)


#: BCM pins the kernel holds with ``dtparam=spi=on`` (SPI0 CE1, CE0); rpi-lgpio cannot claim them.
SPI0_CHIP_SELECTS = {7: "SPI0 CE1", 8: "SPI0 CE0"}


def open_ranger(gpio: Any, config: Any, *, clock: Callable[[], float] = time.monotonic) -> tuple[UltrasonicRanger, list[int]]:
    """Set up the trigger (OUT, LOW) and echo (IN) pins of ``config`` and build the ranger (not started).

    Returns the ranger and the pins claimed. A pin the GPIO library refuses
    becomes one line: :class:`ConfigError` (exit 78) when it is an SPI chip
    select the kernel holds, naming the two ways out; :class:`HardwareError`
    when another process holds it.
    """
    pins: list[int] = []
    try:
        for pin, direction, kwargs in ((config.ultrasonic_trigger_pin, gpio.OUT, {"initial": gpio.LOW}),
                                       (config.ultrasonic_echo_pin, gpio.IN, {})):
            try:
                gpio.setup(pin, direction, **kwargs)
            except RuntimeError as exc:
                if "/dev/mem" in str(exc) or "numbering mode" in str(exc):
                    raise  # not this pin's fault: the caller names it
                raise _pin_error(pin, "trigger" if pin == config.ultrasonic_trigger_pin else "echo", exc) from None
            except Exception as exc:  # noqa: BLE001 - lgpio.error and the like: named below
                raise _pin_error(pin, "trigger" if pin == config.ultrasonic_trigger_pin else "echo", exc) from None
            pins.append(pin)
    except BaseException:
        if pins:
            try:
                gpio.cleanup(pins)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        raise
    sensor = HCSR04(gpio, config.ultrasonic_trigger_pin, config.ultrasonic_echo_pin, clock=clock,
                    timeout_s=config.ultrasonic_timeout_s, max_m=config.ultrasonic_max_m)
    ranger = UltrasonicRanger(sensor, clock=clock, interval_s=config.ultrasonic_interval_s,
                              retries=config.ultrasonic_retries, stale_s=config.ultrasonic_stale_s,
                              samples=config.ultrasonic_samples)
    return ranger, pins


def _pin_error(pin: int, role: str, exc: Exception) -> Exception:
    text = str(exc).strip("'\"")
    busy = "busy" in text.lower() or "not allocated" in text.lower()
    if busy and pin in SPI0_CHIP_SELECTS:
        return ConfigError(
            f"the ultrasonic {role} pin BCM {pin} is {SPI0_CHIP_SELECTS[pin]}, held by the kernel's SPI driver "
            f"(dtparam=spi=on, GPIO says {text!r}): disable SPI (sudo raspi-config, Interface Options, SPI, or "
            f"remove dtparam=spi=on from /boot/firmware/config.txt and reboot), or set drive.bumper_m = 0 "
            f"to drive without the bumper"
        )
    if busy:
        return HardwareError(f"the ultrasonic {role} pin BCM {pin} is held by another process ({text}): "
                             f"`gpioinfo` shows who; stop it (the vendor's server? another rover-drive?)")
    return HardwareError(f"the ultrasonic {role} pin BCM {pin} cannot be set up ({type(exc).__name__}: {text})")
