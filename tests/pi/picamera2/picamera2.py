"""Picamera2, as raspberrypi/picamera2's picamera2/picamera2.py defines its
public API, on a clip instead of libcamera (see the package docstring).

What is kept from upstream, because programs depend on it: the camera list
and IndexError for a missing camera; RuntimeError("Camera __init__ sequence
did not complete.") when the camera cannot be opened (held by another
process here, as libcamera refuses a second user); the configuration
defaults of create_preview/still/video_configuration (buffer_count 4/1/6,
queue True, 30 fps video) and their key checks; RuntimeError when
configuring a started camera; the queue rule (the newest completed request is
kept only when queue is True and buffer_count > 1); buffers held by the
program stall the sensor; every capture is a Job executed by the event loop
for the next frame, and wait=SECONDS raises concurrent.futures.TimeoutError.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import threading
import time
from enum import Enum
from functools import partial

import numpy as np

from . import formats
from .encoders import pack
from .job import Job
from .request import CompletedRequest

_log = logging.getLogger("picamera2")

#: The scene the stand-in camera sees: N x H x W x 3 B,G,R uint8 frames.
CLIP = os.environ.get("PICAMERA2_STANDIN_CLIP", "/var/lib/picamera2-standin/clip.npy")
#: The sensor the stand-in reports: the OV5647 of the PiCar-B kit's camera.
SENSOR = {
    "Model": "ov5647",
    "Location": 2,
    "Rotation": 0,
    "Id": "/base/soc/i2c0mux/i2c@1/ov5647@36",
    "ColorFilterArrangement": 1,
    "PixelArraySize": (2592, 1944),
}
SENSOR_FORMAT = "SGBRG10_CSI2P"


class Preview(Enum):
    NULL = 0
    DRM = 1
    QT = 2
    QTGL = 3


class Picamera2:
    _users: dict[int, "Picamera2"] = {}
    _users_lock = threading.Lock()

    @staticmethod
    def global_camera_info():
        """Id, Model, Location, Rotation and Num of every attached camera."""
        if not os.path.isfile(CLIP):
            return []
        return [{k: SENSOR[k] for k in ("Model", "Location", "Rotation", "Id")} | {"Num": 0}]

    def __init__(self, camera_num=0, verbose_console=None, tuning=None, allocator=None):
        self._preview = None
        self.is_open = False
        camera_num = self.global_camera_info()[camera_num]["Num"]
        self.camera_idx = camera_num
        self.lock = threading.Lock()  # protects _job_list and completed_requests
        self._job_list: list[Job] = []
        self.completed_requests: list[CompletedRequest] = []
        self.camera = None
        self.camera_config: dict = {}
        self.started = False
        self.configure_count = 0
        self.stop_count = 0
        self.frames = 0
        self._max_queue_len = 0
        self._held = 0
        self._loop: threading.Thread | None = None
        self._stopping = threading.Event()
        self._held_lock = threading.Lock()
        self._lockfile = None
        try:
            self._open_camera()
            self.preview_configuration = self.create_preview_configuration()
            self.still_configuration = self.create_still_configuration()
            self.video_configuration = self.create_video_configuration()
        except Exception as e:
            _log.error("Camera __init__ sequence did not complete.")
            raise RuntimeError("Camera __init__ sequence did not complete.") from e
        atexit.register(self.close)

    # -- the camera ---------------------------------------------------------------
    def _open_camera(self):
        # libcamera lets one process at a time acquire a camera.
        lockfile = open(CLIP, "rb")
        try:
            fcntl.flock(lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lockfile.close()
            raise RuntimeError("Failed to acquire camera: Device or resource busy") from None
        self._lockfile = lockfile
        self._clip = np.load(CLIP, mmap_mode="r")
        if self._clip.ndim != 4 or self._clip.shape[3] != 3 or self._clip.dtype != np.uint8:
            raise RuntimeError(f"{CLIP}: expected N x H x W x 3 uint8 frames, got {self._clip.shape} {self._clip.dtype}")
        self.camera = SENSOR["Id"]
        self.is_open = True
        self.sensor_resolution = SENSOR["PixelArraySize"]
        self.sensor_format = SENSOR_FORMAT
        self.camera_properties = {k: SENSOR[k] for k in ("Model", "Location", "Rotation", "ColorFilterArrangement", "PixelArraySize")}
        self.camera_controls = {"FrameDurationLimits": (16971, 1000000000, None), "NoiseReductionMode": (0, 4, 0)}
        self.controls: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_traceback):
        self.close()

    def close(self):
        """Close the camera."""
        atexit.unregister(self.close)
        if not self.is_open:
            return
        self.stop()
        self.is_open = False
        self.camera = None
        self.camera_config = {}
        self._lockfile.close()
        self._lockfile = None

    # -- configurations -------------------------------------------------------------
    @staticmethod
    def _make_initial_stream_config(stream_config, updates, ignore_list=()):
        if updates is None:
            return updates
        valid = ("format", "size", "stride", "preserve_ar")
        for key, value in updates.items():
            if key in valid:
                stream_config[key] = value
            elif key not in ignore_list:
                raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
        return stream_config

    @staticmethod
    def align_stream(stream_config, optimal=True):
        align = 64 if optimal else 2
        if optimal and stream_config["format"] in ("XBGR8888", "XRGB8888"):
            align //= 2
        size = stream_config["size"]
        stream_config["size"] = (size[0] - size[0] % align, size[1] - size[1] % 2)

    _raw_stream_ignore_list = ["bit_depth", "crop_limits", "exposure_limits", "fps", "unpacked"]

    def _create(self, use_case, main_default, lores, raw, transform, colour_space, buffer_count,
                controls, display, encode, queue, sensor, main, default_controls):
        if self.camera is None:
            raise RuntimeError("Camera not opened")
        main = self._make_initial_stream_config(dict(main_default), main)
        self.align_stream(main, optimal=False)
        lores = self._make_initial_stream_config({"format": "YUV420", "size": main["size"], "preserve_ar": False}, lores)
        if lores is not None:
            self.align_stream(lores, optimal=False)
        raw = self._make_initial_stream_config(
            {"format": self.sensor_format, "size": main["size"]}, raw, self._raw_stream_ignore_list
        )
        config = {
            "use_case": use_case, "transform": transform, "colour_space": colour_space,
            "buffer_count": buffer_count, "queue": queue, "main": main, "lores": lores, "raw": raw,
            "controls": default_controls | dict(controls), "sensor": sensor,
        }
        for key, name in (("display", display), ("encode", encode)):
            if name is not None and config.get(name) is None:
                raise RuntimeError(f"{key.capitalize()} stream {name} was not defined")
            config[key] = name
        return config

    def create_preview_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                     buffer_count=4, controls={}, display="main", encode="main", queue=True,
                                     sensor={}, use_case="preview"):
        """Make a configuration suitable for camera preview."""
        return self._create(use_case, {"format": "XBGR8888", "size": (640, 480), "preserve_ar": True}, lores, raw,
                            transform, colour_space, buffer_count, controls, display, encode, queue, sensor, main,
                            {"NoiseReductionMode": 1, "FrameDurationLimits": (100, 83333)})

    def create_still_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=1, controls={}, display=None, encode=None, queue=True,
                                   sensor={}, use_case="still"):
        """Make a configuration suitable for still image capture."""
        return self._create(use_case, {"format": "BGR888", "size": self.sensor_resolution, "preserve_ar": True},
                            lores, raw, transform, colour_space, buffer_count, controls, display, encode, queue,
                            sensor, main, {"NoiseReductionMode": 2, "FrameDurationLimits": (100, 1000000 * 1000)})

    def create_video_configuration(self, main={}, lores=None, raw={}, transform=None, colour_space=None,
                                   buffer_count=6, controls={}, display="main", encode="main", queue=True,
                                   sensor={}, use_case="video"):
        """Make a configuration suitable for video recording."""
        return self._create(use_case, {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True}, lores, raw,
                            transform, colour_space, buffer_count, controls, display, encode, queue, sensor, main,
                            {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)})

    @staticmethod
    def check_stream_config(stream_config, name):
        if type(stream_config) is not dict:
            raise RuntimeError(name + " stream should be a dictionary")
        if "format" not in stream_config:
            raise RuntimeError("format not found in " + name + " stream")
        if "size" not in stream_config:
            raise RuntimeError("size not found in " + name + " stream")
        fmt = stream_config["format"]
        if type(fmt) is not str:
            raise RuntimeError("format in " + name + " stream should be a string")
        if name == "raw":
            if not formats.is_raw(fmt):
                raise RuntimeError("Unrecognised raw format " + fmt)
        elif not formats.is_YUV(fmt) and not formats.is_RGB(fmt) and fmt != "MJPEG":
            raise RuntimeError("Bad format " + fmt + " in stream " + name)
        size = stream_config["size"]
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in " + name + " stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")

    def check_camera_config(self, camera_config):
        for name in ("colour_space", "transform", "main", "lores", "raw"):
            if name not in camera_config:
                raise RuntimeError(f"{name!r} key expected in camera configuration")
        self.check_stream_config(camera_config["main"], "main")
        if camera_config["lores"] is not None:
            self.check_stream_config(camera_config["lores"], "lores")
            if any(l > m for l, m in zip(camera_config["lores"]["size"], camera_config["main"]["size"])):
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        if camera_config["raw"] is not None:
            self.check_stream_config(camera_config["raw"], "raw")

    def configure(self, camera_config=None):
        """Configure the camera with the given configuration (default: "preview")."""
        if camera_config is None:
            camera_config = "preview"
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if isinstance(camera_config, str):
            camera_config = {"still": self.still_configuration, "video": self.video_configuration}.get(
                camera_config, self.preview_configuration)
        if not isinstance(camera_config, dict):
            raise TypeError("Invalid type for `camera_config` given")
        camera_config = camera_config.copy()
        self.camera_config = {}
        self.check_camera_config(camera_config)
        for name in ("main", "lores"):
            stream = camera_config[name]
            if stream is not None and not formats.is_RGB(stream["format"]):
                # libcamera would deliver YUV here; this stand-in makes RGB streams only.
                raise RuntimeError(f"picamera2 stand-in: {stream['format']} in stream {name} is not produced")
        self._max_queue_len = 1 if camera_config["queue"] and camera_config["buffer_count"] > 1 else 0
        self.camera_config = camera_config
        self.controls = dict(camera_config["controls"])
        self.configure_count += 1

    def camera_configuration(self):
        return self.camera_config

    def stream_configuration(self, name="main"):
        return self.camera_config[name]

    def set_controls(self, controls):
        with self.lock:
            self.controls.update(controls)

    # -- running ----------------------------------------------------------------------
    def start(self, config=None, show_preview=False):
        """Start the camera; with no event loop yet, a "NULL preview" thread runs one."""
        if not self.camera_config and config is None:
            config = "preview"
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self._stopping.clear()
        self._held = 0
        self.started = True
        self._loop = threading.Thread(target=self._event_loop, name="picamera2-null-preview", daemon=True)
        self._loop.start()

    def stop(self):
        """Stop the camera; completed requests not handed out are recycled."""
        if not self.started:
            return
        self._stopping.set()
        if self._loop is not None and self._loop is not threading.current_thread():
            self._loop.join()
        self._loop = None
        self.stop_count += 1
        self.started = False
        with self.lock:
            while self.completed_requests:
                self.completed_requests.pop(0).release()

    def _buffer_returned(self):
        with self._held_lock:
            self._held -= 1

    def _frame_interval(self):
        limits = self.controls.get("FrameDurationLimits", (33333, 33333))
        return max(limits[0], 16971) / 1e6

    def _make_request(self, index):
        config = self.camera_config
        frame = self._clip[index % len(self._clip)]
        arrays = {}
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            width, height = stream["size"]
            rows = np.arange(height) * frame.shape[0] // height
            cols = np.arange(width) * frame.shape[1] // width
            arrays[name] = pack(frame[rows][:, cols], stream["format"])
        duration = int(self._frame_interval() * 1e6)
        metadata = {"SensorTimestamp": time.monotonic_ns(), "FrameDuration": duration, "ExposureTime": duration - 100}
        with self._held_lock:
            self._held += 1
        return CompletedRequest(self, arrays, metadata)

    def _event_loop(self):
        index = 0
        next_frame = time.monotonic()
        while not self._stopping.is_set():
            delay = next_frame - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
                continue
            next_frame += self._frame_interval()
            if self._held >= self.camera_config["buffer_count"]:
                # Every buffer is held by the program or the queue: the sensor's frame is lost.
                continue
            request = self._make_request(index)
            index += 1
            self.process_requests([request])

    def process_requests(self, requests):
        self.frames += len(requests)
        finished = []
        with self.lock:
            for req in requests:
                req.acquire()
            self.completed_requests += requests
            while self._job_list:
                if self._job_list[0].execute():
                    finished.append(self._job_list.pop(0))
                else:
                    break
            for req in requests:
                req.release()
            while len(self.completed_requests) > self._max_queue_len:
                self.completed_requests.pop(0).release()
        for job in finished:
            job.signal()

    # -- captures ---------------------------------------------------------------------
    def dispatch_functions(self, functions, wait, signal_function=None, immediate=False):
        """Queue a job; wait: None/True blocks, False returns the Job, a number is a timeout in seconds."""
        if wait is None:
            wait = signal_function is None
        timeout = None if wait is True else wait
        with self.lock:
            job = Job(functions, signal_function)
            self._job_list.append(job)
            if len(self._job_list) == 1 and self.completed_requests and job.execute():
                self._job_list.pop(0)
                finished = job
            else:
                finished = None
        if finished is not None:
            finished.signal()
        return job.get_result(timeout=timeout) if wait else job

    def wait(self, job, timeout=None):
        return job.get_result(timeout=timeout)

    def cancel_all_and_flush(self):
        with self.lock:
            for job in self._job_list:
                job.cancel()
            self._job_list = []

    def capture_request_(self):
        if not self.completed_requests:
            return (False, None)
        return (True, self.completed_requests.pop(0))

    def capture_request(self, wait=None, signal_function=None, flush=None):
        """The next completed request; release() it to give its buffers back."""
        if flush is True:
            flush = time.monotonic_ns()
        return self.dispatch_functions([partial(self._wait_for_timestamp_, flush), self.capture_request_], wait,
                                       signal_function)

    def _wait_for_timestamp_(self, timestamp_ns):
        if timestamp_ns is None:
            return (True, None)
        while self.completed_requests:
            if self.completed_requests[0].get_metadata()["SensorTimestamp"] >= timestamp_ns:
                return (True, None)
            self.completed_requests.pop(0).release()
        return (False, None)

    def capture_array_(self, name):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        result = request.make_array(name)
        request.release()
        return (True, result)

    def capture_array(self, name="main", wait=None, signal_function=None):
        """A 2d image (h x w x channels) from the next frame of the named stream."""
        return self.dispatch_functions([partial(self.capture_array_, name)], wait, signal_function)

    def capture_arrays_(self, names):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        result = ([request.make_array(name) for name in names], request.get_metadata())
        request.release()
        return (True, result)

    def capture_arrays(self, names=["main"], wait=None, signal_function=None):
        """([arrays of the named streams], metadata) of one frame."""
        return self.dispatch_functions([partial(self.capture_arrays_, names)], wait, signal_function)

    def capture_metadata_(self):
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        result = request.get_metadata()
        request.release()
        return (True, result)

    def capture_metadata(self, wait=None, signal_function=None):
        return self.dispatch_functions([self.capture_metadata_], wait, signal_function)
