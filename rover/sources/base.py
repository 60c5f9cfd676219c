"""What every frame source is: the :class:`FrameSource` protocol and :class:`Frame`.

A source only opens, reads one image, and closes; threads, sequence numbers,
time stamps and retries belong to :class:`rover.sources.grabber.FrameGrabber`,
so a new backend is a small class with no concurrency in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

#: The byte order of a frame's three channels in memory.
ChannelOrder = Literal["bgr", "rgb"]


class SourceEnded(Exception):
    """A finite source (video file, image folder) has no more frames. Not an error."""


@dataclass(frozen=True)
class Frame:
    """One captured image and when it was captured."""

    seq: int  #: 0, 1, 2, ... in capture order; gaps never occur here (skips are counted)
    t_capture_ns: int  #: time.monotonic_ns() when the sensor took the image if the source says, else when it was read
    t_capture: float  #: unix time in seconds at the same instant (for humans and logs)
    image: np.ndarray  #: h x w x 3 uint8, channel order given by the source's ``order``

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


class FrameSource(Protocol):
    """A camera, a video, a stream or a folder of images."""

    #: Short description for log lines, e.g. ``"video file vtest.avi"``.
    name: str
    #: Channel order of the images ``read`` returns ("bgr" or "rgb").
    order: ChannelOrder
    #: True: frames come at the source's own rate and the grabber reads them
    #: all, keeping the newest (camera, stream, paced file). False: a frame is
    #: read only when the service asks for one (unpaced file or folder).
    live: bool

    def open(self) -> None:
        """Acquire the device or file. CameraError: retry may help; ConfigError: it will not."""

    def read(self) -> np.ndarray:
        """Block until the next image. Raises SourceEnded or CameraError.

        A source that knows when its sensor took the image sets an attribute
        ``last_capture_ns`` (``time.monotonic_ns`` clock) after each read;
        the grabber stamps the frame with it.
        """

    def close(self) -> None:
        """Release the device; safe to call twice or before ``open``."""
