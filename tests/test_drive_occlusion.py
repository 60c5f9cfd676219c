"""A person walks in front of the followed one: the drive loop with the tracker, tick by tick on an exact clock.

While the followed person is hidden the car coasts as LOST on the last
estimate: the throttle may fall or hold, never rise; it is 0 once the last
capture of the followed person is older than the information horizon; the
person in front is never taken for the target; and the followed person is
re-acquired, with the same lock, when they come out.
"""

from __future__ import annotations

from rover.drive.states import State
from tests.test_drive_fakes import person
from tests.test_drive_loop import Rig

FAR = 0.30  # the followed person's box height: ~6 m ahead
NEAR = 0.60  # the one who walks in front: ~3 m (top edge at 0.20: feet at ~2.5 m by the camera model, as the height says)


def test_a_person_walking_in_front_hides_the_target_the_car_slows_and_reacquires_the_same_person() -> None:
    rig = Rig()
    start = rig.clock.now
    hidden = (start + 3.0, start + 4.5)

    def scene(t: float) -> list:
        target = person(0.50, FAR, score=0.8, top=0.45)
        if t < start + 2.0:
            return [target]
        x = 0.95 - 0.45 * min(1.0, (t - start - 2.0) / 1.0)  # walks in from the right and stands in front
        if t >= start + 4.5:
            x = 0.50 + 0.3 * (t - start - 4.5)  # then walks on to the right
        other = person(x, NEAR, score=0.9, top=0.20)
        return [other] if hidden[0] <= t < hidden[1] else [target, other]

    rig.play(scene, 0.0, 7.0)
    rig.run_until(hidden[0])
    assert rig.loop.state is State.FOLLOWING and rig.loop.tracker.locks == 1
    throttle = rig.chassis.throttle
    assert throttle > 0.0
    last_capture = rig.loop.controller.target_capture
    assert last_capture is not None
    horizon = rig.loop.limits.horizon_s
    while rig.clock.now < hidden[1]:
        rig.loop.step()
        if rig.loop.tracker.seen is not None:
            break  # the followed person is in view again
        target = rig.loop.tracker.target
        assert target is not None and target.height < 0.4  # the lock stays on the far person, never the near one
        assert rig.chassis.throttle <= throttle + 1e-12  # coasting on a prediction: never faster
        throttle = rig.chassis.throttle
        if rig.clock.now >= last_capture + horizon:
            assert rig.chassis.throttle == 0.0  # information too old: stopped
        assert rig.loop.state is not State.SAFE  # the stream is alive: no dead-man
    assert rig.clock.now >= hidden[1] - 0.1  # hidden until the person in front walked on
    assert rig.chassis.values("throttle")  # (the loop ran and commanded the motors)
    rig.run_for(1.0)
    assert rig.loop.state is State.FOLLOWING and rig.loop.tracker.locks == 1  # the same person, the same lock
    assert rig.loop.tracker.target is not None and rig.loop.tracker.target.height < 0.4


def test_a_one_frame_false_box_while_the_target_is_hidden_neither_starts_nor_steers_the_car() -> None:
    # The scene above, and one false box at the left edge at 3.6 s, while the followed person is hidden.
    rig = Rig()
    start = rig.clock.now
    hidden, ghost_t = (start + 3.0, start + 4.5), start + 3.6

    def scene(t: float) -> list:
        target = person(0.50, FAR, score=0.8, top=0.45)
        if t < start + 2.0:
            return [target]
        x = 0.95 - 0.45 * min(1.0, (t - start - 2.0) / 1.0)
        if t >= start + 4.5:
            x = 0.50 + 0.3 * (t - start - 4.5)
        out = [person(x, NEAR, score=0.9, top=0.20)]
        if not hidden[0] <= t < hidden[1]:
            out.append(target)
        if abs(t - ghost_t) < 0.05:
            out.append(("person", 0.6, (0.02, 0.40, 0.10, 0.62)))
        return out

    rig.play(scene, 0.0, 7.0)
    rig.run_until(ghost_t - 0.2)
    assert rig.loop.state is State.LOST and rig.chassis.throttle == 0.0  # hidden long enough: stopped
    steering = rig.chassis.steering
    while rig.clock.now < hidden[1] - 0.1:
        rig.loop.step()
        assert rig.loop.tracker.seen is None and rig.loop.state is not State.FOLLOWING
        assert rig.chassis.throttle == 0.0 and rig.chassis.steering == steering
    rig.run_for(1.0)
    assert rig.loop.state is State.FOLLOWING and rig.loop.tracker.locks == 1  # the followed person, back
    assert rig.loop.tracker.target is not None and rig.loop.tracker.target.height < 0.4


def test_a_second_person_standing_in_the_cars_path_caps_the_speed_by_the_stop_distance() -> None:
    # The followed person ~6 m ahead; from 2 s a second one stands 2 m in front of the car, beside the target's line
    # of sight in the image but in the car's path. The car never drives faster than it can stop outside 1 m of them.
    from tests.test_drive_estimate import box_of

    rig = Rig()
    start = rig.clock.now
    near = ("person", 0.9, box_of(2.0, u=0.56))

    def scene(t: float) -> list:
        target = person(0.45, FAR, score=0.8, top=0.45)
        return [target] if t < start + 2.0 else [target, near]

    rig.play(scene, 0.0, 5.0)
    rig.run_until(start + 2.0)
    assert rig.loop.state is State.FOLLOWING and rig.chassis.throttle * rig.loop.config.top_speed_mps > 0.8
    seen = False
    while rig.clock.now < start + 5.0:
        rig.loop.step()
        seen = seen or any(o.range_m < 2.5 for o, _ in rig.loop.controller._others)
        if seen:  # from the tick that handled the first message showing them, without a ramp
            speed = rig.chassis.throttle * rig.loop.config.top_speed_mps
            assert speed <= rig.loop.controller.safe_speed(2.0, rig.loop.limits) + 1e-9
    assert seen and rig.loop.state is State.FOLLOWING and rig.loop.tracker.locks == 1  # still following the far one
