"""FrameGrabber: newest frame only, skipped frames counted, on-demand reads, retries."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rover.core.errors import CameraError, ConfigError
from rover.sources import SourceEnded
from rover.sources import grabber as g
from rover.sources.grabber import FrameGrabber
from tests.fixtures_detector import FakeTime, ScriptedCamera, wait_until


def test_service_gets_only_the_newest_frame_and_skips_are_counted():
    camera = ScriptedCamera()
    grabber = FrameGrabber(camera).start()
    try:
        camera.push(10, 11, 12, 13, 14)
        wait_until(lambda: grabber.captured == 5)
        frame = grabber.next(timeout=1.0)
        assert frame.seq == 4 and frame.image[0, 0, 0] == 14
        assert grabber.skipped == 4
        assert grabber.next(timeout=0.02) is None  # nothing newer yet
        camera.push(15)
        frame = grabber.next(timeout=2.0)
        assert frame.seq == 5 and grabber.skipped == 4
    finally:
        camera.items.put(SourceEnded("unplugged"))  # let the blocked read return
        grabber.stop()
    assert camera.closes >= 1


def test_stop_does_not_hang_on_a_read_that_never_returns(caplog):
    camera = ScriptedCamera()  # no frames pushed: read blocks like a hung camera
    grabber = FrameGrabber(camera).start()
    wait_until(lambda: camera.opens == 1)
    grabber.stop(timeout=0.05)
    assert "did not return from a read" in caplog.text
    assert camera.closes == 0  # never closed under a running read
    camera.items.put(SourceEnded("released"))


def test_frames_carry_sequence_and_capture_times():
    camera = ScriptedCamera()
    stamps = iter(range(1000, 100000, 1000))
    grabber = FrameGrabber(camera, clock_ns=lambda: next(stamps), wall=lambda: 1.7e9).start()
    try:
        camera.push(1)
        first = grabber.next(timeout=2.0)
        camera.push(2)
        second = grabber.next(timeout=2.0)
    finally:
        camera.items.put(SourceEnded("done"))
        grabber.stop()
    assert (first.seq, first.t_capture_ns, first.t_capture) == (0, 1000, 1.7e9)
    assert (second.seq, second.t_capture_ns) == (1, 2000)
    assert (first.width, first.height) == (4, 4)


def test_on_demand_source_is_read_only_when_a_frame_is_asked_for():
    camera = ScriptedCamera(live=False)
    camera.push(1, 2, 3)
    grabber = FrameGrabber(camera).start()
    try:
        time.sleep(0.05)
        assert camera.reads == 0  # nothing asked yet: nothing read
        assert grabber.next(timeout=2.0).image[0, 0, 0] == 1
        assert grabber.next(timeout=2.0).image[0, 0, 0] == 2
        assert camera.reads == 2 and grabber.skipped == 0
    finally:
        grabber.stop()


def test_source_end_is_reported_and_next_returns_at_once():
    camera = ScriptedCamera(live=False)
    camera.push(1)
    camera.items.put(SourceEnded("done"))
    grabber = FrameGrabber(camera).start()
    try:
        assert grabber.next(timeout=2.0) is not None
        assert grabber.next(timeout=2.0) is None
        wait_until(lambda: grabber.state == g.ENDED)
        assert grabber.finished
    finally:
        grabber.stop()
    assert grabber.state == g.ENDED and camera.closes >= 1


def test_camera_that_never_opens_is_retried_with_doubling_waits_then_fails():
    fake = FakeTime()
    camera = ScriptedCamera(fail_opens=100)
    grabber = FrameGrabber(camera, retry_timeout_s=20.0, retry_backoff_s=0.5, clock=fake.clock, sleep=fake.sleep)
    grabber._run()  # the thread body, run inline: the fake clock makes it exact
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert grabber.state == g.FAILED and isinstance(grabber.error, CameraError)
    assert camera.opens == 8


def test_camera_that_comes_back_delivers_frames_again():
    fake = FakeTime()
    camera = ScriptedCamera(fail_opens=2)
    camera.push(7)
    camera.items.put(SourceEnded("stop the inline run"))
    grabber = FrameGrabber(camera, retry_timeout_s=30.0, retry_backoff_s=0.5, clock=fake.clock, sleep=fake.sleep)
    grabber._run()
    assert fake.sleeps == [0.5, 1.0]
    assert grabber.captured == 1 and grabber.error is None


def test_camera_that_stops_mid_stream_is_closed_and_reopened():
    fake = FakeTime()
    camera = ScriptedCamera()
    camera.push(1)
    camera.items.put(CameraError("scripted camera stopped delivering frames"))
    camera.push(2)
    camera.items.put(SourceEnded("end"))
    grabber = FrameGrabber(camera, retry_backoff_s=0.25, clock=fake.clock, sleep=fake.sleep)
    grabber._run()
    assert camera.opens == 2 and camera.closes >= 2
    assert grabber.captured == 2 and fake.sleeps == [0.25]


def test_retrying_state_is_visible_while_the_camera_is_away():
    camera = ScriptedCamera(fail_opens=1000)
    grabber = FrameGrabber(camera, retry_timeout_s=60.0, retry_backoff_s=0.01).start()
    try:
        wait_until(lambda: grabber.state == g.RETRYING)
        assert grabber.next(timeout=0.02) is None
        assert "unplugged" in str(grabber.error)
    finally:
        grabber.stop()


def test_config_error_from_the_source_is_fatal_without_retry():
    class MissingFile(ScriptedCamera):
        def open(self) -> None:
            self.opens += 1
            raise ConfigError("video file x.avi does not exist")

    camera = MissingFile()
    grabber = FrameGrabber(camera, clock=FakeTime().clock, sleep=lambda s: pytest.fail("must not retry"))
    grabber._run()
    assert grabber.state == g.FAILED and isinstance(grabber.error, ConfigError) and camera.opens == 1


def test_stop_interrupts_a_retry_wait_and_releases_the_camera():
    camera = ScriptedCamera(fail_opens=1000)
    grabber = FrameGrabber(camera, retry_timeout_s=600.0, retry_backoff_s=60.0).start()
    wait_until(lambda: grabber.state == g.RETRYING)
    stopper = threading.Thread(target=grabber.stop, kwargs={"timeout": 5.0})
    stopper.start()
    stopper.join(5.0)
    assert not stopper.is_alive() and not grabber._thread.is_alive()


def test_a_sources_own_capture_time_stamps_the_frame_unless_it_is_on_another_clock():
    class StampingCamera(ScriptedCamera):
        last_capture_ns: int | None = None

    camera = StampingCamera()
    grabber = FrameGrabber(camera, clock_ns=lambda: 5_000_000_000, wall=lambda: 1.7e9)
    camera.last_capture_ns = 4_960_000_000  # the sensor took it 40 ms before it arrived
    grabber._publish(np.zeros((4, 4, 3), np.uint8))
    first = grabber.next(timeout=0)
    camera.last_capture_ns = 123  # not our monotonic clock: stamped on arrival instead
    grabber._publish(np.zeros((4, 4, 3), np.uint8))
    second = grabber.next(timeout=0)
    assert (first.t_capture_ns, first.t_capture) == (4_960_000_000, pytest.approx(1.7e9 - 0.040))
    assert (second.t_capture_ns, second.t_capture) == (5_000_000_000, 1.7e9)
