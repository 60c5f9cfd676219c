"""CompletedRequest as picamera2/request.py defines it: one frame of every
configured stream, reference-counted (acquire/release) like libcamera's buffers."""

import threading
import time


class CompletedRequest:
    def __init__(self, picam2, arrays, metadata):
        self.picam2 = picam2
        self.ref_count = 1
        self.lock = threading.Lock()
        self.config = picam2.camera_config.copy()
        self.configure_count = picam2.configure_count
        self.stop_count = picam2.stop_count
        self._arrays = arrays
        self._metadata = metadata
        self.display = False

    def acquire(self):
        with self.lock:
            if self.ref_count == 0:
                raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
            self.ref_count += 1

    def release(self):
        with self.lock:
            self.ref_count -= 1
            if self.ref_count < 0:
                raise RuntimeError("CompletedRequest: lock now has negative ref_count")
            if self.ref_count == 0:
                self.picam2._buffer_returned()
                self._arrays = None

    def _stream(self, name):
        if self._arrays is None:
            raise RuntimeError("CompletedRequest: the buffers were released")
        if name not in self._arrays:
            raise KeyError(name)
        return self._arrays[name]

    def make_buffer(self, name):
        return self._stream(name).reshape(-1).copy()

    def make_array(self, name):
        return self._stream(name).copy()

    def get_metadata(self):
        return dict(self._metadata)


def sensor_timestamp_ns():
    return time.monotonic_ns()
