"""Frames for calibration and evaluation: sampled evenly from a folder or a video.

Frames are RGB ``uint8`` arrays ``(H, W, 3)`` at their original size; the
model input is made from them by :func:`to_input` (plain resize, as the model
was trained, no letterbox). Calibration and held-out frames are disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rover.core.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class Frame:
    """One RGB frame and where it came from (file name or ``video#index``)."""

    name: str
    rgb: np.ndarray


def even_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)`` (all of them if fewer)."""
    if count <= 0 or total <= 0:
        return []
    if count >= total:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, count).round()})


def split_calib_val(indices: list[int], n_val: int) -> tuple[list[int], list[int]]:
    """Split evenly spread indices into calibration and held-out sets, interleaved.

    Every k-th index is held out so both sets span the whole source; none is
    in both.
    """
    if n_val <= 0 or len(indices) < 2:
        return list(indices), []
    n_val = min(n_val, len(indices) - 1)
    held = set(even_indices(len(indices), n_val))
    val = [x for i, x in enumerate(indices) if i in held]
    calib = [x for i, x in enumerate(indices) if i not in held]
    return calib, val


def count_frames(path: Path) -> int:
    """Number of images in a folder or of frames in a video; ConfigError if none are readable."""
    path = Path(path)
    if path.is_dir():
        return len(_image_files(path))
    return len(_video_frame_positions(path))


def read_frames(path: Path, indices: list[int]) -> dict[int, Frame]:
    """Read the frames at ``indices``; an image that does not decode is left out."""
    path = Path(path)
    if path.is_dir():
        files = _image_files(path)
        frames = {}
        for i in indices:
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is not None:
                frames[i] = Frame(files[i].name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return frames
    wanted = set(indices)
    frames = {}
    capture = cv2.VideoCapture(str(path))
    try:
        position = 0
        while wanted:
            ok, bgr = capture.read()
            if not ok:
                break
            if position in wanted:
                frames[position] = Frame(f"{path.name}#{position}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                wanted.discard(position)
            position += 1
    finally:
        capture.release()
    return frames


def sample(path: Path, count: int, what: str = "--calib") -> list[Frame]:
    """``count`` frames sampled evenly from ``path``; ConfigError when there are none."""
    frames = read_frames(path, even_indices(_total(path, what), count))
    return [frames[i] for i in sorted(frames)] or _no_frames(path, what)


def sample_split(path: Path, n_calib: int, n_val: int, what: str = "--calib") -> tuple[list[Frame], list[Frame]]:
    """Disjoint calibration and held-out frames, both spread evenly over ``path``."""
    calib_idx, val_idx = split_calib_val(even_indices(_total(path, what), n_calib + n_val), n_val)
    frames = read_frames(path, calib_idx + val_idx)
    calib = [frames[i] for i in calib_idx if i in frames]
    if not calib:
        _no_frames(path, what)
    return calib, [frames[i] for i in val_idx if i in frames]


def to_input(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The model input for one RGB frame: ``uint8 [1, height, width, 3]``."""
    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(resized[None], dtype=np.uint8)


def _total(path: Path, what: str) -> int:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist: give a folder of images or a video file")
    total = count_frames(path)
    if total == 0:
        _no_frames(path, what)
    return total


def _no_frames(path: Path, what: str) -> list[Frame]:
    raise ConfigError(f"{what} {path} has no readable frames: give a folder of images or a video file OpenCV can decode")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _video_frame_positions(path: Path) -> list[int]:
    """Positions of the decodable frames (container frame counts can lie, so decode)."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return []
        positions = []
        while capture.grab():
            positions.append(len(positions))
        return positions
    finally:
        capture.release()


def write_synthetic_frames(folder: Path, count: int = 12, seed: int = 0, size: tuple[int, int] = (320, 240)) -> Path:
    """PNG frames of coloured rectangles and circles on noise: a stand-in camera where no video is at hand."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(count):
        image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            colour = tuple(int(c) for c in rng.integers(60, 256, 3))
            x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
            if rng.random() < 0.5:
                cv2.rectangle(image, (x, y), (x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))), colour, -1)
            else:
                cv2.circle(image, (x + 30, y + 30), int(rng.integers(10, 30)), colour, -1)
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), image)
    return folder
