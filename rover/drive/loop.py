"""The drive's main loop: one :meth:`DriveLoop.step` per control tick.

Each step waits for the newest detection at most ``tick_s`` (the poll
timeout is the dead-man's timer: it runs whether messages come or not),
classifies it, updates the target lock and the state machine, computes the
commands, sends the changed ones to the chassis, publishes the drive status
and pings the systemd watchdog.

Everything it talks to is injected (chassis, detection source, status sink,
clock, notifier), so the tests drive it tick by tick with an exact clock and
without sockets. The caller owns the exit path: it must call
``chassis.close()`` in a ``finally`` (``rover.drive.__main__`` does).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Protocol

from rover.core.sdnotify import Notifier
from rover.drive.bumper import UNKNOWN, blocks, bumper_state
from rover.drive.config import DriveConfig
from rover.drive.control import Commands, Controller
from rover.drive.labels import check_label
from rover.drive.limits import StreamTiming
from rover.drive.receiver import MessageGate, Received
from rover.drive.states import MOVING_STATES, State, StateMachine
from rover.drive.status import DriveStatus, EstimateInfo, LimitsInfo, TargetInfo, encode
from rover.drive.tracker import TargetTracker
from rover.hw.chassis import Chassis

log = logging.getLogger("rover.drive")

#: Detector statuses after which no fresh frame is coming soon: disarm at once
#: rather than after the dead-man's timeout (see rover.core.messages.STATUSES).
BLIND_STATUSES = frozenset({"stopping", "source_ended", "camera_error"})


class DetectionSource(Protocol):
    def recv(self, timeout_s: float) -> bytes | None:
        """The newest raw message, waiting at most ``timeout_s``; None when none came."""


class StatusSink(Protocol):
    def send(self, raw: bytes) -> None:
        """Publish one encoded status message without blocking."""


class DriveLoop:
    """Follows one label; call :meth:`step` repeatedly, or :meth:`run`."""

    def __init__(
        self,
        config: DriveConfig,
        chassis: Chassis,
        receiver: DetectionSource,
        publisher: StatusSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.chassis = chassis
        self.receiver = receiver
        self.publisher = publisher
        self.clock = clock
        self.notifier = notifier or Notifier(environ={})
        now = clock()
        self.gate = MessageGate(config.max_age_s)
        self.tracker = TargetTracker.from_config(config)
        self.timing = StreamTiming(config.max_age_min_s, config.max_age_s, config.deadman_min_s, config.deadman_s,
                                   config.stop_time_s, config.travel_bound_m)
        self.limits = self.timing.limits()
        self.machine = StateMachine(config.arm_count, config.deadman_s, config.lost_coast_s, config.search, config.search_s, now)
        self.controller = Controller(config)
        self.stop_requested = False
        self.sent: Commands | None = None  # what the chassis was last told; None: unknown
        self._last_tick = now
        self._range_unknown = False
        self._last_capture: float | None = None  # capture time (s) of the newest fresh detection
        self._last_watchdog: float | None = None
        self._reported_state: State | None = None
        self._label_checked = False
        self._seq = 0

    @property
    def state(self) -> State:
        return self.machine.state

    def run(self) -> None:
        """Step until :attr:`stop_requested` is set (by a signal handler)."""
        while not self.stop_requested:
            self.step()

    def step(self) -> Commands:
        """One control tick; returns the commands in force after it."""
        self._update_limits()
        timeout = self.config.tick_s
        deadline = self.machine.next_deadline()
        info = self.controller.target_capture
        if info is not None and self.machine.state in MOVING_STATES and info + self.limits.horizon_s > self.clock():
            info_deadline = info + self.limits.horizon_s  # the throttle goes to 0 then (rover.drive.control)
            deadline = info_deadline if deadline is None else min(deadline, info_deadline)
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - self.clock()))
        raw = self.receiver.recv(timeout)
        now = self.clock()
        # Timers first: a message that arrives after the dead-man's deadline
        # (a late wake-up, a stalled loop) must not cancel it.
        before = self.machine.state
        timed = self.machine.tick(now)
        if timed is State.SAFE and before is not State.SAFE:
            log.warning("no fresh detection for %.2f s: motors off, back to SAFE", now - (self.machine.last_fresh or now))
            self._forget_target()
            self._reconnect_if_silent()
        if raw is not None:
            self._handle(self.gate.classify(raw, now), now)
            self._update_limits()
        state = self.machine.tick(now)
        if state is State.SAFE and timed is not State.SAFE:
            self._forget_target()  # disarmed by a detector status
        distance = self.chassis.distance_m()
        # A fitted sensor that cannot tell (unplugged, stuck, its thread dead) blocks like an obstacle.
        bumper = bumper_state(self.config.bumper_m, distance, bool(getattr(self.chassis, "has_ranger", False)))
        unknown = bumper == UNKNOWN
        if unknown and not self._range_unknown and state in MOVING_STATES:
            log.warning("ultrasonic range unknown (no valid reading): forward motion blocked by the bumper until it reads again")
            self._range_unknown = True
        elif not unknown:
            self._range_unknown = False
        blocked = blocks(bumper)
        # A stalled loop must not turn its whole gap into one ramp step.
        dt = min(max(0.0, now - self._last_tick), 2 * self.config.tick_s)
        commands = self.controller.output(state, now, dt, self.limits, blocked)
        self._last_tick = now
        self._apply(state, commands)
        self._publish(now, commands, distance, bumper)
        self._notify(now, state)
        return commands

    def _reconnect_if_silent(self) -> None:
        """After the dead-man: a receiver that heard nothing at all gets a new socket now (see receiver)."""
        reconnect = getattr(self.receiver, "reconnect_if_silent", None)
        if reconnect is not None:
            reconnect(self.machine.deadman_s)  # the dead-man in force (it follows the stream's rate)

    def _update_limits(self) -> None:
        """Freshness and dead-man follow the measured stream (rover.drive.limits), within the config's bounds."""
        self.limits = self.timing.limits()
        self.gate.max_age_s = self.limits.max_age_s
        self.machine.deadman_s = self.limits.deadman_s

    def _forget_target(self) -> None:
        self.tracker.reset()
        self.controller.reset()

    def _handle(self, received: Received, now: float) -> None:
        if received.kind in ("fresh", "stale") and received.age_s is not None:
            self.timing.frame(now, received.age_s)
        if received.kind != "fresh":
            self.machine.not_fresh()
            if received.kind == "status" and received.message is not None and received.message.status in BLIND_STATUSES:
                if self.machine.state is not State.SAFE:
                    log.warning("the detector reports %r: stopping the car", received.message.status)
                self.machine.disarm(now)
            if received.kind in ("invalid", "stale") and self.gate.counters[received.kind] == 1:
                log.warning("ignored a %s detection message (%s); further ones are only counted in the status",
                            received.kind, received.reason)
            return
        message = received.message
        assert message is not None and message.frame is not None and received.age_s is not None
        self._check_label(message)
        self._last_capture = message.frame.t_capture_ns / 1e9
        follow = self.config.follow
        candidates = [(d.box, d.score) for d in message.detections if d.label == follow and d.score >= self.config.min_score]
        # The tracker sees the arming messages too: a person in all of them is
        # confirmed (lock_frames) by the time the car is ARMED, so it starts no later.
        target = self.tracker.update(candidates, now, self._last_capture, self.controller.odometer)
        self.controller.observe_others(self.tracker.others(), self._last_capture, now)  # anyone in the path
        if self.machine.state is State.SAFE:
            self.machine.fresh(now, target_seen=False)
            return
        self.machine.fresh(now, target_seen=target is not None)
        if target is None:
            self.controller.target_missing()
        else:
            self.controller.observe(target.box, self._last_capture, now, self.tracker.locks)

    def _check_label(self, message: object) -> None:
        if self._label_checked:
            return
        self._label_checked = True
        labels = getattr(getattr(message, "model", None), "labels", None)
        warning = check_label(self.config.follow, labels)  # raises ConfigError for a label the model lacks
        if warning:
            log.warning(warning)

    def _apply(self, state: State, commands: Commands) -> None:
        if state is State.SAFE:
            if self.sent != commands:
                self.chassis.safe()  # motors off, steering and head centred, in the backend's own order
                self.sent = commands
            return
        sent = self.sent
        if sent is None or sent.throttle != commands.throttle:
            self.chassis.drive(commands.throttle)
        if sent is None or sent.steering != commands.steering:
            self.chassis.steer(commands.steering)
        if sent is None or sent.pan != commands.pan:
            self.chassis.pan(commands.pan)
        self.sent = commands

    def _publish(self, now: float, commands: Commands, distance: float | None, bumper: str) -> None:
        if self.publisher is None:
            return
        target = self.tracker.target
        estimate = self.controller.estimate
        status = DriveStatus(
            seq=self._seq,
            t_ns=max(0, int(now * 1e9)),
            state=self.machine.state.value,
            follow=self.config.follow,
            throttle=commands.throttle,
            steering=commands.steering,
            pan=commands.pan,
            scale=min(1.0, self.limits.speed_limit_mps / max(1e-9, self.config.max_throttle * self.config.top_speed_mps)),
            target=None if target is None else TargetInfo(target.box, target.score),
            detection_age_ms=None if self._last_capture is None else max(0.0, (now - self._last_capture) * 1000),
            latency_ms=None if self.timing.latency.mean is None else self.timing.latency.mean * 1000,
            obstacle_m=distance if distance is not None and math.isfinite(distance) and distance >= 0 else None,
            bumper=bumper,
            counters=dict(self.gate.counters),
            estimate=None if estimate is None else EstimateInfo(
                estimate.range_m, math.degrees(estimate.bearing_rad), estimate.range_rate_mps,
                math.degrees(estimate.bearing_rate_rad_s), estimate.target_speed_mps),
            target_faster=self.controller.faster,
            limits=LimitsInfo(self.limits.max_age_s * 1000, self.limits.deadman_s * 1000,
                              min(self.limits.speed_limit_mps, self.config.max_throttle * self.config.top_speed_mps),
                              self.config.travel_bound_m),
        )
        self._seq += 1
        self.publisher.send(encode(status))

    def _notify(self, now: float, state: State) -> None:
        interval = self.notifier.watchdog_interval
        if interval is not None and (self._last_watchdog is None or now - self._last_watchdog >= interval):
            self.notifier.watchdog()
            self._last_watchdog = now
        if state is not self._reported_state:
            self._reported_state = state
            log.info("state %s", state)
            self.notifier.status(f"{state}: following {self.config.follow!r}")
