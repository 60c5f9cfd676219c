"""A car on the fake hardware rolling towards a wall, seen by the fake HC-SR04.

The car's motion comes from what the fake hardware recorded, nothing else:
the 2019-23 kit's enable-pin PWM duty (when each duty took effect) and its
direction pins (:class:`tests.fakehw.RPi.GPIO.Board`), or the 2024 kit's
PCA9685 motor channels after each bus transaction
(:class:`tests.fakehw.smbus2.PCA9685Model`). Its speed follows the duty with
a dead band and a top speed, and a first-order lag (exactly integrated over
each span of constant duty), so a calibration that reads the range over time
must find the numbers given here. ``lurch_mps`` adds a jump at the dead band
(a motor that breaks away at a speed), to test the stop range.

:class:`WallSonar` is a :class:`FakeHCSR04` whose distance is the car's gap to
the wall when triggered; ``dead = True`` unplugs it (no echo ever rises).
"""

from __future__ import annotations

import math
from typing import Any, Callable

try:
    from .RPi.GPIO import FakeHCSR04
    from .smbus2 import _power_on, _replay, decode_pulse
except ImportError:  # as top-level modules on PYTHONPATH
    from RPi.GPIO import FakeHCSR04  # type: ignore[no-redef]
    from smbus2 import _power_on, _replay, decode_pulse  # type: ignore[no-redef]

Timeline = Callable[[], list[tuple[float, float]]]  # [(t, signed duty fraction)], oldest first
#: The coast's time constant once the motors are off (the kits cannot brake; the car rolls ``v * tau``).
#: An assumption, not a measurement: a geared toy car on a hard floor; slower than the 0.06 s this fake
#: had, which let a stop margin without any coast term pass (review 3, M1). rover.hw.motorcal assumes 0.3 s.
COAST_TAU_S = 0.25


def _last(events: list[dict], t: float, key: str = "t") -> Any:
    value = None
    for event in events:
        if event.get(key, event["t"]) <= t:
            value = event["value"]
    return value


def picar_b_timeline(board: Any, config: Any) -> Timeline:
    """The 2019-23 kit: each motor's enable duty signed by its input pins (forward per its ``*_direction``)."""

    def motor(t: float, side: str, history: dict[str, list[dict]]) -> float:
        duty = _last(history["enable"], t, "effective") or 0.0
        in1, in2 = _last(history["in1"], t), _last(history["in2"], t)
        if in1 == in2 or in1 is None:
            return 0.0
        forward_in1 = getattr(config, f"{side}_direction") == 1
        return duty / 100.0 * (1.0 if bool(in1) == forward_in1 else -1.0)

    def timeline() -> list[tuple[float, float]]:
        sides = {}
        times: set[float] = set()
        for side in ("right", "left"):
            history = {"enable": board.history(getattr(config, f"{side}_enable_pin"), "duty"),
                       "in1": board.history(getattr(config, f"{side}_in1_pin"), "level"),
                       "in2": board.history(getattr(config, f"{side}_in2_pin"), "level")}
            sides[side] = history
            times.update(e.get("effective", e["t"]) for events in history.values() for e in events)
        return [(t, (motor(t, "right", sides["right"]) + motor(t, "left", sides["left"])) / 2) for t in sorted(times)]

    return timeline


def picar_b2_timeline(chip: Any, config: Any) -> Timeline:
    """The 2024 kit: each motor's slow-decay channel pair decoded after every transaction (forward per direction)."""

    def fraction(positive: int, negative: int) -> float:
        if positive == 4096 and negative < 4096:
            return 1.0 - negative / 4096
        if negative == 4096 and positive < 4096:
            return -(1.0 - positive / 4096)
        return 0.0

    def timeline() -> list[tuple[float, float]]:
        regs = _power_on()
        out = []
        for group in chip.transactions():
            for event in group:
                if event["applied"]:
                    _replay(regs, event["reg"], event["value"])
            m1 = fraction(decode_pulse(regs, config.m1_in1_channel), decode_pulse(regs, config.m1_in2_channel))
            m2 = fraction(decode_pulse(regs, config.m2_in1_channel), decode_pulse(regs, config.m2_in2_channel))
            out.append((group[0]["t"], (m1 * config.m1_direction + m2 * config.m2_direction) / 2))
        return out

    return timeline


class WallCar:
    """Straight towards a wall ``wall_m`` ahead; speed from the duty timeline."""

    def __init__(self, wall_m: float, timeline: Timeline, *, deadband: float = 0.2, top_mps: float = 1.0,
                 tau_s: float = 0.12, brake_tau_s: float = COAST_TAU_S, lurch_mps: float = 0.0) -> None:
        self.wall_m, self.timeline = wall_m, timeline
        self.deadband, self.top_mps, self.lurch_mps = deadband, top_mps, lurch_mps
        self.tau_s, self.brake_tau_s = tau_s, brake_tau_s
        self.closest_m = wall_m

    def speed_for(self, duty: float) -> float:
        """Steady speed (m/s, forward positive) at a signed duty fraction."""
        magnitude = abs(duty)
        if magnitude < self.deadband:
            return 0.0
        speed = self.lurch_mps + (self.top_mps - self.lurch_mps) * (magnitude - self.deadband) / (1.0 - self.deadband)
        return math.copysign(speed, duty)

    def gap_at(self, t: float) -> float:
        """The distance to the wall at ``t`` (integrated from the start, exactly per span of constant duty)."""
        events = [(when, duty) for when, duty in self.timeline() if when <= t]
        x, v = 0.0, 0.0
        for i, (when, duty) in enumerate(events):
            end = events[i + 1][0] if i + 1 < len(events) else t
            dt = max(0.0, end - when)
            target = self.speed_for(duty)
            tau = self.tau_s if target != 0.0 else self.brake_tau_s
            decay = math.exp(-dt / tau)
            x += target * dt + (v - target) * tau * (1.0 - decay)
            v = target + (v - target) * decay
        gap = self.wall_m - x
        self.closest_m = min(self.closest_m, gap)
        return gap


class WallSonar(FakeHCSR04):
    """An HC-SR04 facing the wall of ``car``; its distance is the gap when it is triggered."""

    def __init__(self, trigger: int, echo: int, car: WallCar, clock: Callable[[], float]) -> None:
        self.car, self._clock_for_gap = car, clock
        self.dead = False
        #: Something standing in front (a person, a box): this far ahead of where the car started, or None.
        self.blocker_m: float | None = None
        #: Every ``miss_every``-th measurement gets no echo (a soft surface, an angle): 0 = none missed.
        self.miss_every = 0
        self.attempts = 0
        self._missing = False
        super().__init__(trigger, echo, 1.0)

    def on_output(self, pin: int, level: int, t: float) -> None:
        if not level and self._rose is not None and t - self._rose >= 10e-6:
            self.attempts += 1
            self._missing = bool(self.miss_every) and self.attempts % self.miss_every == 0
        super().on_output(pin, level, t)

    def travelled_m(self) -> float:
        return self.car.wall_m - self.car.gap_at(self._clock_for_gap())

    @property  # type: ignore[override]
    def distance_m(self) -> float | None:
        if self.dead or self._missing:
            return None
        gap = self.car.gap_at(self._clock_for_gap())
        if self.blocker_m is not None:
            gap = min(gap, self.blocker_m - (self.car.wall_m - gap))
        return gap

    @distance_m.setter
    def distance_m(self, value: float | None) -> None:
        pass  # FakeHCSR04.__init__ sets it; the wall decides here
