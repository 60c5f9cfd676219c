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
    from .. import lgpio
    from ..fakehw_state import Store, default_path, pid_alive
except ImportError:
    import lgpio  # type: ignore[no-redef]
    from fakehw_state import Store, default_path, pid_alive  # type: ignore[no-redef]

#: The two GPIO libraries with the RPi.GPIO API, and how they differ where rover cares
#: (waveform80/rpi-lgpio docs/differences.rst):
#:
#: - ``RPi.GPIO``: register access; two processes may drive one pin; setup() of a pin that
#:   another run left as an output warns "This channel is already in use".
#: - ``rpi-lgpio``: a pin is claimed exclusively through /dev/gpiochip*; a pin another
#:   live process holds, or one the kernel holds (SPI0's CE1/CE0, BCM 7/8, with
#:   dtparam=spi=on), raises ``lgpio.error('GPIO busy')``; no "in use" warnings; the
#:   lgpio library creates its notify FIFO ``.lgd-nfy<N>`` in the working directory
#:   when it is imported (a read-only one fails the import).
FLAVOURS = ("RPi.GPIO", "rpi-lgpio")
#: Subprocesses pick the flavour, and the board's kernel-held pins, from the environment.
FLAVOUR_ENV = "ROVER_FAKEHW_GPIO"
SPI_ENV = "ROVER_FAKEHW_SPI"
#: BCM pins the kernel's SPI driver holds with dtparam=spi=on (gpioinfo: "spi0 CS1", "spi0 CS0").
SPI0_PINS = {7: "spi0 CS1", 8: "spi0 CS0"}

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
    return {"pins": {}, "dead": [], "claims": {}, "kernel": {}}


class Board:
    """The Pi's GPIO pins as hardware: state, history, attached devices."""

    def __init__(self, state_path: str | os.PathLike[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, *, spi: bool = False) -> None:
        self.clock = clock
        self.store = Store(state_path, "gpio", _new_state)
        self._devices: list[Any] = []
        if spi:
            self.hold_for_kernel(SPI0_PINS)

    def hold_for_kernel(self, pins: dict[int, str]) -> None:
        """The kernel holds these pins (``dtparam=spi=on``): rpi-lgpio cannot claim them."""
        with self.store.transaction() as state:
            state.setdefault("kernel", {}).update({str(pin): label for pin, label in pins.items()})

    def duty_at(self, bcm: int, t: float) -> float | None:
        """The duty (percent) the pin really carries at time ``t``.

        RPi.GPIO's soft-PWM thread and lgpio's tx_pwm ("replaced by the new
        settings at the end of the current cycle") take a new duty only at
        the end of the period running when it was set, so each duty event
        records when it takes effect.
        """
        duty = None
        for event in self.history(bcm, "duty"):
            if event.get("effective", event["t"]) <= t:
                duty = event["value"]
        return duty

    # -- exclusive claims (rpi-lgpio) -------------------------------------------------
    def claim(self, bcm: int, owner: str) -> None:
        with self.store.transaction() as state:
            self._reap(state)
            kernel = state.setdefault("kernel", {}).get(str(bcm))
            holder = state.setdefault("claims", {}).get(str(bcm))
            if kernel is not None or (holder is not None and holder != owner):
                raise lgpio.error(lgpio.error_text(lgpio.GPIO_BUSY))
            state["claims"][str(bcm)] = owner

    def release(self, bcm: int, owner: str) -> None:
        with self.store.transaction() as state:
            if state.setdefault("claims", {}).get(str(bcm)) == owner:
                del state["claims"][str(bcm)]

    def holder(self, bcm: int) -> str | None:
        with self.store.transaction() as state:
            self._reap(state)
            return state.setdefault("claims", {}).get(str(bcm))

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
    def event(self, bcm: int, kind: str, value: Any, **extra: Any) -> None:
        self.store.record({"t": self.clock(), "pin": bcm, "kind": kind, "value": value, **extra})

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
        """Software PWMs whose owner process died stop toggling; the pin keeps its last level. Claims end."""
        claims = state.setdefault("claims", {})
        for key, owner in list(claims.items()):
            if owner in state["dead"] or not pid_alive(int(owner.split(":")[0])):
                del claims[key]
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

    def __init__(self, board: Board | None = None, *, flavour: str = "RPi.GPIO",
                 workdir: str | os.PathLike[str] | None = None, gpiomem: bool = True) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
        self.flavour = flavour
        self.gpiomem = gpiomem  # False: RPi.GPIO's setup() raises "No access to /dev/mem" (no /dev/gpiomem access)
        self.fifo: str | None = None
        if flavour == "rpi-lgpio":
            self.fifo = _open_notify_fifo(workdir)
        self.board = board if board is not None else Board(default_path(), spi=bool(os.environ.get(SPI_ENV)))
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
        if self.flavour == "rpi-lgpio":
            self.board.claim(bcm, self.owner)  # lgpio.error('GPIO busy'): another process or the kernel has it
        elif not self.gpiomem:
            raise RuntimeError("No access to /dev/mem.  Try running as root!")
        with self.board.store.transaction() as state:
            self.board._reap(state)  # a dead process's PWM stopped before this process takes the pin
            pin = state["pins"].setdefault(str(bcm), {})
            if (self.flavour == "RPi.GPIO" and self._warnings and pin.get("function") == "OUT"
                    and bcm not in self._directions):
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
            if self.flavour == "rpi-lgpio":
                self.board.release(bcm, self.owner)
            self.board.event(bcm, "function", "IN")
        if channel is None:
            self._mode = None

    # -- software PWM -------------------------------------------------------------
    def PWM(self, channel: int, frequency: float) -> "_PWM":  # noqa: N802 - the real API's name
        return _PWM(self, channel, frequency)

    def simulate_kill(self) -> None:
        """This 'process' dies (SIGKILL): its PWM threads stop, pins keep their levels, claims end, no cleanup."""
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
        self._started_at = 0.0
        gpio._pwms[bcm] = self

    def _effective(self) -> float:
        """When a duty set now takes effect: the end of the period running now."""
        now = self._gpio.board.clock()
        period = 1.0 / self._freq
        periods = int((now - self._started_at) / period) + 1
        return self._started_at + periods * period

    def start(self, dutycycle: float) -> None:
        _check_duty(dutycycle)
        if self._running:
            return  # the real library ignores a second start
        self._running = True
        self._started_at = self._gpio.board.clock()
        self._set(duty=float(dutycycle))
        self._gpio.board.event(self._bcm, "pwm", "start")
        self._gpio.board.event(self._bcm, "freq", self._freq)
        self._gpio.board.event(self._bcm, "duty", float(dutycycle), effective=self._started_at)

    def ChangeDutyCycle(self, dutycycle: float) -> None:  # noqa: N802
        _check_duty(dutycycle)
        if self._running:
            self._set(duty=float(dutycycle))
            self._gpio.board.event(self._bcm, "duty", float(dutycycle), effective=self._effective())

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


def _open_notify_fifo(workdir: str | os.PathLike[str] | None) -> str:
    """What importing lgpio does: a FIFO ``.lgd-nfy<N>`` in the working directory (``LG_WD`` overrides it).

    lgpio's C side cannot make it in a read-only directory, and the Python
    side's ``open('.lgd-nfy<N>')`` then fails with FileNotFoundError.
    """
    folder = os.fspath(workdir) if workdir is not None else os.environ.get("LG_WD") or os.getcwd()
    handle = next(_serial) % 64
    path = os.path.join(folder, f".lgd-nfy{handle}")
    try:
        if not os.path.exists(path):
            os.mkfifo(path, 0o600)
    except OSError:
        raise FileNotFoundError(2, "No such file or directory", f".lgd-nfy-{abs(lgpio.GPIO_BUSY)}") from None
    return path


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
        self._stall: tuple[Any, int, float] | None = None
        self._stalled = 0

    def stall_reader(self, clock: Any, every: int, seconds: float) -> None:
        """Every ``every``-th echo, the reading thread is descheduled for ``seconds`` while the echo is
        high (the GIL, a busy detector): ``clock`` (a TickClock) jumps, so it sees the falling edge late."""
        self._stall = (clock, every, seconds)

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
        high = self._echo is not None and self._echo[0] <= t < self._echo[1]
        if high and self._stall is not None:
            clock, every, seconds = self._stall
            if self.triggers % every == 0 and self._stalled < self.triggers:
                self._high_reads = getattr(self, "_high_reads", 0) + 1
                if self._high_reads == 2:  # the rise was seen on the first one: now the reader is descheduled
                    self._stalled, self._high_reads = self.triggers, 0
                    clock.advance(seconds)
        return int(high)


if os.environ.get("ROVER_FAKEHW_NOT_A_PI"):  # both libraries refuse to import off a Pi
    raise RuntimeError("This module can only be run on a Raspberry Pi!")
_default = FakeGPIO(flavour=os.environ.get(FLAVOUR_ENV) or "RPi.GPIO")
setwarnings = _default.setwarnings
setmode = _default.setmode
getmode = _default.getmode
setup = _default.setup
output = _default.output
input = _default.input  # noqa: A001 - the real module's name
gpio_function = _default.gpio_function
cleanup = _default.cleanup
PWM = _default.PWM
