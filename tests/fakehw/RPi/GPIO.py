"""A fake ``RPi.GPIO`` (0.7 API) that records what the pins did.

Two layers, as on a real Pi:

- :class:`Board` is the hardware: each BCM pin's function (IN/OUT), the
  level it drives, and a running software PWM (duty, frequency, owner). It
  keeps a timestamped history of every level, duty and function change, and
  outlives the processes that drive it when backed by a file
  (``ROVER_FAKEHW_STATE``). A software PWM dies with its owner process; its
  pin then stays where the thread left it (taken as HIGH for a duty above 0,
  the worst case), which is why safe-stop must drive the pins low.
- :class:`FakeGPIO` is one process's RPi.GPIO library: numbering mode,
  warnings, the channels this process set up, its PWM objects. It raises the
  errors the real library raises, with the same messages.

The module-level functions (``setmode``, ``setup``, ``PWM``, ...) belong to a
default :class:`FakeGPIO`, so ``import RPi.GPIO as GPIO`` works in a
subprocess with this folder on ``PYTHONPATH``. Edge detection
(``add_event_detect``, ``wait_for_edge``) is not modelled.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

try:  # imported as tests.fakehw.RPi.GPIO (in-process) or as RPi.GPIO (PYTHONPATH)
    from ..fakehw_state import Store, default_path, pid_alive
except ImportError:
    from fakehw_state import Store, default_path, pid_alive  # type: ignore[no-redef]

VERSION = "0.7.1"
RPI_INFO = {"P1_REVISION": 3, "REVISION": "c03111", "TYPE": "Pi 4 Model B (fake)", "RAM": "4G",
            "MANUFACTURER": "Sony", "PROCESSOR": "BCM2711"}
RPI_REVISION = 3
BOARD, BCM = 10, 11
OUT, IN = 0, 1
LOW, HIGH = 0, 1
PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22
RISING, FALLING, BOTH = 31, 32, 33
HARD_PWM, SERIAL, I2C, SPI, UNKNOWN = 43, 40, 42, 41, -1

#: Physical header pin -> BCM number (40-pin header).
BOARD_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
                21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
                36: 16, 37: 26, 38: 20, 40: 21}
_PULLS = {PUD_OFF: "off", PUD_DOWN: "down", PUD_UP: "up"}
_serial = itertools.count(1)


@dataclass(frozen=True)
class PinView:
    """What a probe on one pin would see now."""

    function: str  # "IN" or "OUT"
    level: int | None  # 0/1 driven level; None when PWM toggles it or nothing drives it
    duty: float | None  # percent while a software PWM runs, else None
    freq: float | None


def _new_state() -> dict:
    return {"pins": {}, "dead": []}


class Board:
    """The Pi's GPIO pins as hardware: state, history, attached devices."""

    def __init__(self, state_path: str | os.PathLike[str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.store = Store(state_path, "gpio", _new_state)
        self._devices: list[Any] = []

    # -- inspection (what tests assert on) ------------------------------------
    def pin(self, bcm: int) -> PinView:
        with self.store.transaction() as state:
            self._reap(state)
            pin = state["pins"].get(str(bcm), {})
        pwm = pin.get("pwm")
        level = pin.get("level", None) if pin.get("function") == "OUT" else None
        if pwm is not None:
            level = 0 if pwm["duty"] == 0 else 1 if pwm["duty"] == 100 else None
        return PinView(pin.get("function", "IN"), level, pwm["duty"] if pwm else None, pwm["freq"] if pwm else None)

    def history(self, bcm: int | None = None, kind: str | None = None) -> list[dict]:
        """Events ``{"t", "pin", "kind", "value", "pid"}``; kinds: function, level, duty, freq, pwm."""
        return [e for e in self.store.history()
                if (bcm is None or e["pin"] == bcm) and (kind is None or e["kind"] == kind)]

    def levels(self, bcm: int) -> list[int]:
        """Every level the pin was driven to, oldest first."""
        return [e["value"] for e in self.history(bcm, "level")]

    def duties(self, bcm: int) -> list[float]:
        """Every software-PWM duty (percent) the pin was given, oldest first."""
        return [e["value"] for e in self.history(bcm, "duty")]

    # -- devices wired to pins --------------------------------------------------
    def attach(self, device: Any) -> Any:
        """Wire a device model (with ``pins``, ``on_output(pin, level, t)``, ``drives(pin)``, ``level(pin, t)``)."""
        self._devices.append(device)
        return device

    # -- used by FakeGPIO ---------------------------------------------------------
    def event(self, bcm: int, kind: str, value: Any) -> None:
        self.store.record({"t": self.clock(), "pin": bcm, "kind": kind, "value": value})

    def drive(self, bcm: int, level: int) -> None:
        with self.store.transaction() as state:
            self._reap(state)  # never let a dead PWM's stuck level land after this write
            state["pins"].setdefault(str(bcm), {})["level"] = level
        t = self.clock()
        self.store.record({"t": t, "pin": bcm, "kind": "level", "value": level})
        for device in self._devices:
            if bcm in device.pins:
                device.on_output(bcm, level, t)

    def read(self, bcm: int) -> int:
        for device in self._devices:
            if device.drives(bcm):
                return int(device.level(bcm, self.clock()))
        view = self.pin(bcm)
        if view.function == "OUT":
            return view.level if view.level is not None else 0
        with self.store.transaction() as state:
            pull = state["pins"].get(str(bcm), {}).get("pull", "off")
        return 1 if pull == "up" else 0  # "off": a floating input reads low here

    def _reap(self, state: dict) -> None:
        """Software PWMs whose owner process died stop toggling; the pin keeps its last level."""
        for key, pin in state["pins"].items():
            pwm = pin.get("pwm")
            if pwm is None:
                continue
            owner = pwm["owner"]
            if owner in state["dead"] or not pid_alive(int(owner.split(":")[0])):
                pin["pwm"] = None
                pin["level"] = 1 if pwm["duty"] > 0 else 0
                self.store.record({"t": self.clock(), "pin": int(key), "kind": "pwm", "value": "died"})


class FakeGPIO:
    """One process's RPi.GPIO library state on a :class:`Board`."""

    VERSION, RPI_INFO, RPI_REVISION = VERSION, RPI_INFO, RPI_REVISION
    BOARD, BCM, OUT, IN, LOW, HIGH = BOARD, BCM, OUT, IN, LOW, HIGH
    PUD_OFF, PUD_DOWN, PUD_UP, RISING, FALLING, BOTH = PUD_OFF, PUD_DOWN, PUD_UP, RISING, FALLING, BOTH
    HARD_PWM, SERIAL, I2C, SPI, UNKNOWN = HARD_PWM, SERIAL, I2C, SPI, UNKNOWN

    def __init__(self, board: Board | None = None) -> None:
        self.board = board if board is not None else Board(default_path())
        self.owner = f"{os.getpid()}:{next(_serial)}"
        self._mode: int | None = None
        self._warnings = True
        self._directions: dict[int, int] = {}  # BCM -> OUT/IN, channels this process set up
        self._pwms: dict[int, "_PWM"] = {}

    # -- numbering ------------------------------------------------------------------
    def setwarnings(self, flag: bool) -> None:
        self._warnings = bool(flag)

    def setmode(self, mode: int) -> None:
        if mode not in (BOARD, BCM):
            raise ValueError("An invalid mode was passed to setmode()")
        if self._mode is not None and self._mode != mode:
            raise ValueError("A different mode has already been set!")
        self._mode = mode

    def getmode(self) -> int | None:
        return self._mode

    def _bcm(self, channel: int) -> int:
        if self._mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
        if not isinstance(channel, int) or isinstance(channel, bool):
            raise ValueError("Channel must be an integer or list/tuple of integers")
        if self._mode == BCM:
            if not 0 <= channel <= 53:
                raise ValueError("The channel sent is invalid on a Raspberry Pi")
            return channel
        if channel not in BOARD_TO_BCM:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return BOARD_TO_BCM[channel]

    # -- setup / output / input -----------------------------------------------------
    def setup(self, channel: int | Iterable[int], direction: int, pull_up_down: int = PUD_OFF,
              initial: int = -1) -> None:
        for one in _channels(channel):
            self._setup_one(one, direction, pull_up_down, initial)

    def _setup_one(self, channel: int, direction: int, pull_up_down: int, initial: int) -> None:
        bcm = self._bcm(channel)
        if direction not in (OUT, IN):
            raise ValueError("An invalid direction was passed to setup()")
        if direction == OUT and pull_up_down != PUD_OFF:
            raise ValueError("pull_up_down parameter is not valid for outputs")
        if direction == IN and initial != -1:
            raise ValueError("initial parameter is not valid for inputs")
        if pull_up_down not in _PULLS:
            raise ValueError("Invalid value for pull_up_down - should be either PUD_OFF, PUD_UP or PUD_DOWN")
        with self.board.store.transaction() as state:
            self.board._reap(state)  # a dead process's PWM stopped before this process takes the pin
            pin = state["pins"].setdefault(str(bcm), {})
            if self._warnings and pin.get("function") == "OUT" and bcm not in self._directions:
                warnings.warn("This channel is already in use, continuing anyway.  Use GPIO.setwarnings(False) "
                              "to disable warnings.", RuntimeWarning, stacklevel=4)
            pin["function"] = "OUT" if direction == OUT else "IN"
            pin["pull"] = _PULLS[pull_up_down]
            pin.setdefault("level", 0)
        self._directions[bcm] = direction
        self.board.event(bcm, "function", "OUT" if direction == OUT else "IN")
        if direction == OUT and initial != -1:
            self.board.drive(bcm, 1 if initial else 0)

    def output(self, channel: int | Iterable[int], value: int | Iterable[int]) -> None:
        channels = _channels(channel)
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(channels)
        if len(values) != len(channels):
            raise RuntimeError("Number of channels != number of values")
        for one, level in zip(channels, values):
            bcm = self._bcm(one)
            if self._directions.get(bcm) != OUT:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            self.board.drive(bcm, 1 if level else 0)

    def input(self, channel: int) -> int:
        bcm = self._bcm(channel)
        if bcm not in self._directions:
            raise RuntimeError("You must setup() the GPIO channel first")
        return self.board.read(bcm)

    def gpio_function(self, channel: int) -> int:
        view = self.board.pin(self._bcm(channel))
        return OUT if view.function == "OUT" else IN

    def cleanup(self, channel: int | Iterable[int] | None = None) -> None:
        """Channels this process set up go back to inputs without pull; all of them with no argument."""
        if channel is None:
            targets = list(self._directions)
        else:
            targets = [self._bcm(one) for one in _channels(channel)]
        if not self._directions and self._warnings:
            warnings.warn("No channels have been set up yet - nothing to clean up!  Try cleaning up at the end "
                          "of your program instead!", RuntimeWarning, stacklevel=2)
        for bcm in targets:
            if bcm not in self._directions:
                continue
            with self.board.store.transaction() as state:
                pin = state["pins"].setdefault(str(bcm), {})
                pin["function"], pin["pull"] = "IN", "off"
            del self._directions[bcm]
            self.board.event(bcm, "function", "IN")
        if channel is None:
            self._mode = None

    # -- software PWM -------------------------------------------------------------
    def PWM(self, channel: int, frequency: float) -> "_PWM":  # noqa: N802 - the real API's name
        return _PWM(self, channel, frequency)

    def simulate_kill(self) -> None:
        """This 'process' dies (SIGKILL): its PWM threads stop, pins keep their levels, no cleanup runs."""
        with self.board.store.transaction() as state:
            state["dead"].append(self.owner)
            self.board._reap(state)
        self._directions.clear()
        self._pwms.clear()
        self._mode = None


class _PWM:
    """``RPi.GPIO.PWM``: a software PWM thread on one output channel."""

    def __init__(self, gpio: FakeGPIO, channel: int, frequency: float) -> None:
        bcm = gpio._bcm(channel)
        if bcm in gpio._pwms:
            raise RuntimeError("A PWM object already exists for this GPIO channel")
        if gpio._directions.get(bcm) != OUT:
            raise RuntimeError("You must setup() the GPIO channel as an output first")
        if frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self._gpio, self._bcm, self._freq = gpio, bcm, float(frequency)
        self._running = False
        gpio._pwms[bcm] = self

    def start(self, dutycycle: float) -> None:
        _check_duty(dutycycle)
        if self._running:
            return  # the real library ignores a second start
        self._running = True
        self._set(duty=float(dutycycle))
        self._gpio.board.event(self._bcm, "pwm", "start")
        self._gpio.board.event(self._bcm, "freq", self._freq)
        self._gpio.board.event(self._bcm, "duty", float(dutycycle))

    def ChangeDutyCycle(self, dutycycle: float) -> None:  # noqa: N802
        _check_duty(dutycycle)
        if self._running:
            self._set(duty=float(dutycycle))
            self._gpio.board.event(self._bcm, "duty", float(dutycycle))

    def ChangeFrequency(self, frequency: float) -> None:  # noqa: N802
        if frequency <= 0.0:
            raise ValueError("frequency must be greater than 0.0")
        self._freq = float(frequency)
        if self._running:
            self._set(freq=self._freq)
            self._gpio.board.event(self._bcm, "freq", self._freq)

    def stop(self) -> None:
        """The thread ends and writes the pin LOW, as RPi.GPIO's soft PWM does."""
        self._gpio._pwms.pop(self._bcm, None)
        if not self._running:
            return
        self._running = False
        with self._gpio.board.store.transaction() as state:
            state["pins"].setdefault(str(self._bcm), {})["pwm"] = None
        self._gpio.board.event(self._bcm, "pwm", "stop")
        self._gpio.board.drive(self._bcm, 0)

    def _set(self, **changes: float) -> None:
        with self._gpio.board.store.transaction() as state:
            pin = state["pins"].setdefault(str(self._bcm), {})
            pwm = pin.get("pwm") or {"duty": 0.0, "freq": self._freq, "owner": self._gpio.owner}
            pwm.update(changes)
            pin["pwm"] = pwm


def _check_duty(dutycycle: float) -> None:
    if not 0.0 <= dutycycle <= 100.0:
        raise ValueError("dutycycle must have a value from 0.0 to 100.0")


def _channels(channel: int | Iterable[int]) -> list[int]:
    return list(channel) if isinstance(channel, (list, tuple)) else [channel]  # type: ignore[list-item]


class FakeHCSR04:
    """An HC-SR04 wired to a :class:`Board`: a >= 10 us trigger pulse makes an echo pulse.

    The echo rises ``ECHO_DELAY_S`` after the trigger falls and stays high for
    the round trip ``2 * distance_m / 343`` s. ``distance_m = None`` models a
    sensor that never answers (unplugged): the echo stays low.
    """

    ECHO_DELAY_S = 0.00045

    def __init__(self, trigger: int, echo: int, distance_m: float | None = 1.0) -> None:
        self.trigger, self.echo = trigger, echo
        self.pins = (trigger,)
        self.distance_m = distance_m
        self.triggers = 0
        self._rose: float | None = None
        self._echo: tuple[float, float] | None = None

    def on_output(self, pin: int, level: int, t: float) -> None:
        if level:
            self._rose = t
        elif self._rose is not None:
            width, self._rose = t - self._rose, None
            if width >= 10e-6 and self.distance_m is not None:
                self.triggers += 1
                start = t + self.ECHO_DELAY_S
                self._echo = (start, start + 2.0 * self.distance_m / 343.0)

    def drives(self, pin: int) -> bool:
        return pin == self.echo

    def level(self, pin: int, t: float) -> int:
        return int(self._echo is not None and self._echo[0] <= t < self._echo[1])


_default = FakeGPIO()
setwarnings = _default.setwarnings
setmode = _default.setmode
getmode = _default.getmode
setup = _default.setup
output = _default.output
input = _default.input  # noqa: A001 - the real module's name
gpio_function = _default.gpio_function
cleanup = _default.cleanup
PWM = _default.PWM
