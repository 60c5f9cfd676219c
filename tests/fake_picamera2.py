"""A fake ``picamera2.Picamera2`` that behaves as raspberrypi/picamera2 does.

Written from reading picamera2's source (picamera2.py, job.py, request.py,
previews/null_preview.py; versions 0.3.12 to 0.3.36) and libcamera's
Raspberry Pi pipeline (src/libcamera/pipeline/rpi/vc4/vc4.cpp), none of it
copied. What it reproduces, because rover depends on it:

- **Jobs.** ``capture_array`` dispatches a job; the event loop (picamera2's
  ``NullPreview`` thread, here run inline or on demand) executes it when a
  completed request is there. The caller waits on the job's Future:
  ``wait=None/True`` forever, ``wait=<seconds>`` raising
  ``concurrent.futures.TimeoutError`` (picamera2 >= 0.3.20; before that a
  number counts as ``True`` and waits forever), ``wait=False`` or a
  ``signal_function`` returning the job. ``Picamera2.wait(job, timeout)``
  takes a timeout since 0.3.17, ``cancel_all_and_flush`` exists since 0.3.20.
  A wait that the real library would never end raises :class:`WouldHang`
  after ``HANG_S`` instead, so a test fails rather than hangs.
- **stop/close.** ``stop()`` while the event loop runs is itself a job,
  queued behind any pending capture: with a camera that stopped delivering
  it never runs (WouldHang). ``close()`` stops the event loop first and then
  stops the camera directly.
- **Requests and buffers.** ``buffer_count`` requests; ``capture_request``
  hands one over until its ``release()`` (metadata with ``SensorTimestamp``); with ``queue=True``
  and more than one buffer the event loop keeps the newest completed request
  (``_max_queue_len = 1``) and releases older ones back to libcamera. A
  sensor frame waits in Unicam's raw buffers (``raw_buffers``) until a
  request is free, oldest first; when they are full the frame is lost.
- **Opening.** No camera: ``IndexError`` (picamera2 >= 0.3.13 indexes
  ``global_camera_info()`` before its try block) or, before, the wrapped
  "Camera(s) not found" error. Busy: ``RuntimeError("Camera __init__ sequence
  did not complete.")`` whose cause is libcamera's ``RuntimeError("Failed to
  acquire camera: Device or resource busy")``, chained as ``__cause__`` since
  0.3.35 and only as ``__context__`` before.

Everything the camera did is in :attr:`FakePicamera2.events` as
``(t_ns, what, *details)``; sensor frames carry a sequence number and the
sensor timestamp they were exposed at.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

LATEST = (0, 3, 36)
#: A wait real picamera2 would never end is cut after this many seconds.
HANG_S = 1.0


class WouldHang(AssertionError):
    """Real picamera2 would block here forever."""


def _wait_forever(future: Future, what: str):
    try:
        return future.result(HANG_S)
    except FutureTimeout:
        raise WouldHang(f"{what}: real picamera2 waits forever here") from None


class Job:
    """picamera2's job.Job: a list of stage functions and a Future for the result."""

    def __init__(self, functions, signal_function=None, what: str = "job") -> None:
        self._functions = list(functions)
        self._future: Future = Future()
        self._future.set_running_or_notify_cancel()
        self._signal_function = signal_function
        self._result = None
        self.what = what

    def execute(self) -> bool:
        result = None
        try:
            while self._functions:
                done, result = self._functions[0]()
                if not done:
                    break
                self._functions.pop(0)
            if not self._functions:
                self._result = result
        except Exception as exc:  # noqa: BLE001 - the job's failure is its result
            self._future.set_exception(exc)
            self._functions = []
        return not self._functions

    def signal(self) -> None:
        if not self._future.done():
            self._future.set_result(self._result)
        if self._signal_function:
            self._signal_function(self)

    def get_result(self, timeout: float | None = None):
        if timeout is None:
            return _wait_forever(self._future, f"waiting for {self.what}")
        return self._future.result(timeout=timeout)

    def cancel(self) -> None:
        self._future.set_exception(CancelledError())


class _Request:
    def __init__(self, index: int) -> None:
        self.index = index
        self.seq = -1
        self.t_sensor_ns = 0


class CompletedRequest:
    """picamera2's request.CompletedRequest as ``capture_request`` hands it over: held until released."""

    def __init__(self, camera: FakePicamera2, request: _Request) -> None:
        self._camera = camera
        self._request = request
        self._released = False

    def make_array(self, name: str) -> np.ndarray:
        if self._released:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        return self._camera._make_array(name)

    def get_metadata(self) -> dict:
        # SensorTimestamp: libcamera's buffer timestamp, the clock picamera2 compares with time.monotonic_ns()
        return {"SensorTimestamp": self._request.t_sensor_ns, "ExposureTime": 10000, "FrameDuration": 33333}

    def release(self) -> None:
        if self._released:
            raise RuntimeError("CompletedRequest: lock now has negative ref_count")
        self._released = True
        self._camera._record("release", self._request.seq)
        self._camera._release(self._request)


class CameraSystem:
    """The Pi as libcamera sees it: attached cameras, who holds them, the sensor.

    ``factory`` is what rover is given as its ``camera_factory`` (the
    ``Picamera2`` constructor). ``frame_period_s`` > 0 makes started cameras
    free-running (a sensor thread); 0 leaves frames to :meth:`FakePicamera2.sensor_frame`.
    ``stalled`` stops every sensor from delivering (a loose ribbon cable).
    """

    def __init__(
        self,
        *,
        version: tuple[int, int, int] = LATEST,
        attached: int = 1,
        frame_period_s: float = 0.0,
        raw_buffers: int = 2,
        scene_rgb: tuple[int, int, int] = (200, 100, 30),
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.version = version
        self.attached = attached
        self.frame_period_s = frame_period_s
        self.raw_buffers = raw_buffers
        self.scene_rgb = scene_rgb
        self.clock_ns = clock_ns
        self.stalled = False
        self.held_elsewhere: set[int] = set()  # camera numbers another process has acquired
        self.acquired: set[int] = set()
        self.instances: list[FakePicamera2] = []
        self._lock = threading.Lock()

    def factory(self, camera_num: int = 0, **kwargs: Any) -> FakePicamera2:
        return FakePicamera2(self, camera_num, **kwargs)

    def acquire(self, num: int) -> None:
        with self._lock:
            if num in self.acquired or num in self.held_elsewhere:
                # libcamera Camera::acquire -> -EBUSY; the Python binding throws std::system_error
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            self.acquired.add(num)

    def release(self, num: int) -> None:
        with self._lock:
            self.acquired.discard(num)


class FakePicamera2:
    """One opened camera (``Picamera2(camera_num)``)."""

    def __init__(self, system: CameraSystem, camera_num: int = 0) -> None:
        self.system = system
        self.version = system.version
        self.events: list[tuple] = []
        self.is_open = False
        self.started = False
        self.camera_config: dict | None = None
        self._event_loop_running = False
        self._requests: list[_Request] = []  # completed by libcamera, not yet seen by the event loop
        self.completed_requests: list[_Request] = []
        self._job_list: list[Job] = []
        self._max_queue_len = 0
        self._free: deque[_Request] = deque()  # queued to libcamera, waiting for a frame
        self._raw: deque[tuple[int, int]] = deque()  # sensor frames waiting for a request
        self.lock = threading.Lock()  # picamera2's lock: the job list and completed_requests
        self._hw_lock = threading.Lock()
        self._loop_lock = threading.Lock()
        self._wake_pending = False
        #: Test control: True delays picamera2's event loop (the GIL busy elsewhere) until run_event_loop().
        self.event_loop_lagging = False
        self.sensor_seq = 0
        self.dropped = 0
        self._sensor_stop = threading.Event()
        self._sensor_thread: threading.Thread | None = None
        cameras = list(range(system.attached))
        if self.version >= (0, 3, 13):
            camera_num = cameras[camera_num]  # IndexError before the try block, as upstream
        self.camera_num = camera_num
        try:
            self._open_camera()
        except Exception as exc:
            self._record("init_failed", repr(exc))
            if self.version >= (0, 3, 35):
                raise RuntimeError("Camera __init__ sequence did not complete.") from exc
            raise RuntimeError("Camera __init__ sequence did not complete.")  # noqa: B904 - 0.3.12..0.3.34 chain it only implicitly
        system.instances.append(self)

    def _open_camera(self) -> None:
        if self.system.attached == 0 or self.camera_num >= self.system.attached:
            raise RuntimeError("Camera(s) not found (Do not forget to disable legacy camera with raspi-config).")
        self.system.acquire(self.camera_num)
        self.is_open = True
        self._record("open", self.camera_num)

    def _record(self, what: str, *details: Any) -> None:
        self.events.append((self.system.clock_ns(), what, *details))

    def kinds(self) -> list[str]:
        return [e[1] for e in self.events]

    # -- configuration --------------------------------------------------------
    def create_video_configuration(self, main: dict | None = None, buffer_count: int = 6, queue: bool = True, **kwargs) -> dict:
        return {"use_case": "video", "main": dict(main or {}), "buffer_count": buffer_count, "queue": queue, **kwargs}

    def configure(self, config: dict) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main = config["main"]
        if main.get("format") not in ("RGB888", "BGR888"):
            raise ValueError(f"Bad format {main.get('format')!r}")
        self.camera_config = config
        self._max_queue_len = 1 if config["queue"] and config["buffer_count"] > 1 else 0
        self._record("configure", tuple(main["size"]), main["format"], config["buffer_count"], config["queue"])

    # -- running --------------------------------------------------------------
    def start(self) -> None:
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self._event_loop_running = True  # start() runs the NullPreview event loop by default
        with self._hw_lock:
            self._free = deque(_Request(i) for i in range(self.camera_config["buffer_count"]))
            self._raw.clear()
        self.started = True
        self._record("start")
        if self.system.frame_period_s > 0:
            self._sensor_stop.clear()
            self._sensor_thread = threading.Thread(target=self._free_run, name="fake-sensor", daemon=True)
            self._sensor_thread.start()

    def _free_run(self) -> None:
        while not self._sensor_stop.wait(self.system.frame_period_s):
            self.sensor_frame()

    def sensor_frame(self) -> None:
        """The sensor finishes one frame: it waits for a request in a raw buffer, or is lost."""
        if not self.started or self.system.stalled:
            return
        completed = False
        with self._hw_lock:
            self.sensor_seq += 1
            if len(self._raw) >= self.system.raw_buffers:
                self.dropped += 1
                self._record("dropped", self.sensor_seq)
            else:
                self._raw.append((self.sensor_seq, self.system.clock_ns()))
            completed = self._run_pipeline()
        if completed:
            self._wake()

    def _run_pipeline(self) -> bool:
        """Pair the oldest raw frame with a free request (vc4.cpp tryRunPipeline). Holds _hw_lock."""
        completed = False
        while self._raw and self._free:
            seq, t_ns = self._raw.popleft()
            request = self._free.popleft()
            request.seq, request.t_sensor_ns = seq, t_ns
            self._requests.append(request)
            self._record("completed", seq, self.sensor_seq - seq)
            completed = True
        return completed

    def _release(self, request: _Request) -> None:
        """The request goes back to libcamera (CompletedRequest.release -> queue_request)."""
        completed = False
        with self._hw_lock:
            if self.started:
                self._free.append(request)
                completed = self._run_pipeline()
        if completed:
            self._wake()

    def _wake(self) -> None:
        """libcamera signalled, or a job was dispatched: picamera2's event loop runs."""
        self._wake_pending = True
        if self.event_loop_lagging or not self._event_loop_running:
            return
        self.run_event_loop()

    def run_event_loop(self) -> None:
        if not self._loop_lock.acquire(blocking=False):
            return  # it is running in another thread and will see the pending wake
        try:
            while self._wake_pending:
                self._wake_pending = False
                self._process_requests()
        finally:
            self._loop_lock.release()

    def _process_requests(self) -> None:
        with self._hw_lock:
            new, self._requests = self._requests, []
        finished: list[Job] = []
        release: list[_Request] = []
        with self.lock:
            self.completed_requests += new
            while self._job_list:
                if self._job_list[0].execute():
                    finished.append(self._job_list.pop(0))
                else:
                    break
            while len(self.completed_requests) > self._max_queue_len:
                release.append(self.completed_requests.pop(0))
        for request in release:
            self._release(request)
        for job in finished:
            job.signal()

    def dispatch_functions(self, functions, wait, signal_function=None, immediate=False, what="job"):
        if wait is None:
            wait = signal_function is None
        timeout = None
        if self.version >= (0, 3, 20) and wait is not True:
            timeout = wait  # a number of seconds; before 0.3.20 any true value waits forever
        with self.lock:
            only_job = not self._job_list
            job = Job(functions, signal_function, what)
            self._job_list.append(job)
            prod = only_job and (bool(self.completed_requests) or immediate)
        if prod:
            self._wake()
        if not wait:
            return job
        return job.get_result(timeout=timeout) if timeout is not None else job.get_result()

    def _capture_array_(self, name: str):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        array = self._make_array(name)
        self._record("capture_array", request.seq, self.sensor_seq - request.seq)
        self._release(request)
        return (True, array)

    def capture_array(self, name: str = "main", wait=None, signal_function=None):
        return self.dispatch_functions([lambda: self._capture_array_(name)], wait, signal_function, what="capture_array")

    def _capture_request_(self):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)  # the caller now holds it, until release()
        self._record("capture_request", request.seq, self.sensor_seq - request.seq)
        return (True, CompletedRequest(self, request))

    def capture_request(self, wait=None, signal_function=None, flush=None):
        return self.dispatch_functions([self._capture_request_], wait, signal_function, what="capture_request")

    def _make_array(self, name: str) -> np.ndarray:
        if name != "main":
            raise RuntimeError(f"Stream {name!r} is not defined")
        main = self.camera_config["main"]
        width, height = main["size"]
        rgb = np.array(self.system.scene_rgb, np.uint8)
        pixel = rgb[::-1] if main["format"] == "RGB888" else rgb  # RGB888 is B, G, R in memory
        return np.broadcast_to(pixel, (height, width, 3)).copy()

    def wait(self, job: Job, *args, **kwargs):
        if self.version < (0, 3, 17) and (args or kwargs):
            raise TypeError("wait() takes 2 positional arguments but 3 were given")
        return job.get_result(*args, **kwargs)

    @property
    def cancel_all_and_flush(self):
        if self.version < (0, 3, 20):
            raise AttributeError("'Picamera2' object has no attribute 'cancel_all_and_flush'")
        return self._cancel_all_and_flush

    def _cancel_all_and_flush(self) -> None:
        with self.lock:
            jobs, self._job_list = self._job_list, []
            for job in jobs:
                job.cancel()
        self._record("cancel_all_and_flush", len(jobs))

    def _stop_(self):
        if self.started:
            self._sensor_stop.set()
            self.started = False
            with self._hw_lock:
                self._free.clear()
                self._raw.clear()
                self._requests = []
            self.completed_requests = []
            self._record("stop")
        return (True, None)

    def stop(self) -> None:
        if not self.started:
            return
        if self._event_loop_running:
            self.dispatch_functions([self._stop_], wait=True, immediate=True, what="stop (queued behind pending jobs)")
        else:
            self._stop_()

    def close(self) -> None:
        if self._event_loop_running:
            self._event_loop_running = False  # stop_preview(): the NullPreview thread is joined
            self._record("stop_preview")
        if not self.is_open:
            return
        self.stop()
        self.system.release(self.camera_num)
        self.is_open = False
        self._record("close")
        thread = self._sensor_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)

    # -- what the test reads ----------------------------------------------------
    def held_by_picamera2(self) -> int:
        """Requests picamera2 holds (completed, or completed and not yet seen by the event loop)."""
        with self._hw_lock:
            return len(self.completed_requests) + len(self._requests)
