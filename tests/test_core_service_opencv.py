"""rover.core.service quiets OpenCV's logging with whichever API the installed OpenCV has.

The Pi install keeps opencv-python-headless 4.11 (numpy 1.x, docs/pi.md), which
has ``cv2.setLogLevel`` and no ``cv2.utils.logging``; OpenCV 5 has only the latter.
The emulated Pi found the detector dying at start-up on 4.11 when only the
OpenCV 5 form was used.
"""

from __future__ import annotations

import sys
import types

from rover.core import service


class _Recorder:
    def __init__(self) -> None:
        self.levels: list[int] = []

    def setLogLevel(self, level: int) -> None:  # noqa: N802 - OpenCV's name
        self.levels.append(level)


def test_opencv_5_form(monkeypatch):
    logging_ns = _Recorder()
    logging_ns.LOG_LEVEL_ERROR = 2
    fake = types.SimpleNamespace(utils=types.SimpleNamespace(logging=logging_ns))
    monkeypatch.setitem(sys.modules, "cv2", fake)
    service.quiet_opencv()
    assert logging_ns.levels == [2]


def test_opencv_4_form(monkeypatch):
    top = _Recorder()
    fake = types.SimpleNamespace(utils=types.SimpleNamespace(), setLogLevel=top.setLogLevel)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    service.quiet_opencv()
    assert top.levels == [2]  # LOG_LEVEL_ERROR

