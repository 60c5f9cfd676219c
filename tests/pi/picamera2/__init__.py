"""A stand-in for Raspberry Pi OS's picamera2, for the emulated Pi (tests/pi).

Installed by the emulation harness where apt puts python3-picamera2
(/usr/lib/python3/dist-packages/picamera2), so a venv made with
--system-site-packages finds it exactly as on a Pi. It keeps the public API
of raspberrypi/picamera2 (picamera2/picamera2.py, job.py, request.py) that a
program like rover calls, with the same defaults, checks, errors and frame
queueing, and the same import-time dependency on Debian's numpy 1.x C ABI
(picamera2 -> encoders -> a C extension built against numpy 1.24, as
simplejpeg is on the Pi). Instead of libcamera it plays a clip: the camera
"sees" the frames of CLIP (an N x H x W x 3 B,G,R uint8 .npy file, decoded
from a video by the harness), looping at the configured frame rate. Without
the clip there is no camera, as on a Pi with no ribbon cable.
"""

from concurrent.futures import TimeoutError  # noqa: F401  (picamera2 exports it)

from .job import CancelledError, Job  # noqa: F401
from .picamera2 import CLIP, Picamera2, Preview  # noqa: F401
from .request import CompletedRequest  # noqa: F401
