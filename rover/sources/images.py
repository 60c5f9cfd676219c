"""A folder of images as a frame source (sorted by file name, B, G, R like OpenCV)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from rover.core.errors import ConfigError
from rover.sources.base import SourceEnded

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class ImageFolderSource:
    """Every image in a folder, in file-name order, paced at ``fps`` or read on request.

    A file OpenCV cannot decode is logged and skipped (one bad file should not
    stop a replay); a folder without images is a ConfigError.
    """

    order = "bgr"

    def __init__(
        self,
        folder: Path,
        *,
        pace: bool = True,
        fps: float = 10.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.folder = Path(folder)
        self.name = f"image folder {self.folder}"
        self.live = pace
        self.fps = fps
        self.loop = loop
        self._clock = clock
        self._sleep = sleep
        self._files: list[Path] = []
        self._index = 0
        self._count = 0
        self._start = 0.0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise ConfigError(f"image folder {self.folder} does not exist: fix camera.source or --source")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self._files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise ConfigError(f"image folder {self.folder} has no images ({suffixes}): fix camera.source or --source")
        self._index = 0
        self._count = 0
        self._start = self._clock()

    def read(self) -> np.ndarray:
        bad_in_a_row = 0
        while True:
            if self._index >= len(self._files):
                if not self.loop:
                    raise SourceEnded(self.name)
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                break
            log.warning("skipping %s: OpenCV cannot decode it", path)
            bad_in_a_row += 1
            if bad_in_a_row >= len(self._files):
                raise SourceEnded(f"{self.name}: no image in it can be decoded")
        if self.live:
            delay = self._start + self._count / self.fps - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._count += 1
        return image

    def close(self) -> None:
        self._files = []
