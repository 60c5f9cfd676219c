"""From a camera frame to the model's input tensor, in one place.

The model contract wants ``uint8 [1, H, W, 3]`` RGB (normalisation is inside
the graph). Frames arrive as ``H x W x 3`` uint8 in the source's own channel
order: OpenCV and picamera2's ``RGB888`` deliver B, G, R; picamera2's
``BGR888`` delivers R, G, B. :class:`Preprocessor` resizes and reorders into
buffers it allocates once, so the per-frame path allocates nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from rover.sources.base import ChannelOrder


class Preprocessor:
    """Resize a frame to the model's input size and make it RGB.

    ``INTER_AREA`` when shrinking (no aliasing on a 640x480 -> 300x300 step),
    ``INTER_LINEAR`` when enlarging; the result is a view of a buffer that the
    next call overwrites, so feed it to the model before the next frame.
    """

    def __init__(self, width: int, height: int) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"model input size must be positive, not {width}x{height}")
        self.width = width
        self.height = height
        self._tensor = np.zeros((1, height, width, 3), np.uint8)
        self._resized = np.zeros((height, width, 3), np.uint8)

    def __call__(self, frame: np.ndarray, order: ChannelOrder) -> np.ndarray:
        """Return the ``[1, H, W, 3]`` RGB tensor for ``frame`` (``h x w x 3`` uint8)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an h x w x 3 uint8 frame, got {frame.shape} {frame.dtype}")
        out = self._tensor[0]
        h, w = frame.shape[:2]
        if order == "bgr":
            if (w, h) == (self.width, self.height):
                cv2.cvtColor(frame, cv2.COLOR_BGR2RGB, dst=out)
            else:
                interp = cv2.INTER_AREA if w > self.width and h > self.height else cv2.INTER_LINEAR
                cv2.resize(frame, (self.width, self.height), dst=self._resized, interpolation=interp)
                cv2.cvtColor(self._resized, cv2.COLOR_BGR2RGB, dst=out)
        elif order == "rgb":
            if (w, h) == (self.width, self.height):
                np.copyto(out, frame)
            else:
                interp = cv2.INTER_AREA if w > self.width and h > self.height else cv2.INTER_LINEAR
                cv2.resize(frame, (self.width, self.height), dst=out, interpolation=interp)
        else:
            raise ValueError(f"channel order must be 'bgr' or 'rgb', not {order!r}")
        return self._tensor
