"""The top level shared by rover's long-running programs (detector, view).

Logging to stderr in the form journald expects, and a run until SIGTERM or
SIGINT: the program's ``run(args, stop)`` polls the ``stop`` event; a
:class:`~rover.core.errors.RoverError` becomes one log line and its exit code
(78 for configuration errors, so systemd does not restart-loop).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Callable

from rover.core.errors import RoverError


def setup_logging(verbose: bool = False) -> None:
    """Log lines to stderr; no time stamps under systemd (journald adds them)."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr, force=True)
    if not verbose:
        # OpenCV's own "[ WARN:0@...]" lines repeat what our CameraError says, unformatted.
        quiet_opencv()


#: cv::utils::logging::LOG_LEVEL_ERROR (the same number in OpenCV 4 and 5).
_CV_LOG_LEVEL_ERROR = 2


def quiet_opencv() -> None:
    """OpenCV logs errors only. OpenCV 5 has cv2.utils.logging; 4.x (4.11 on the Pi) has cv2.setLogLevel."""
    import cv2

    utils_logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if utils_logging is not None:
        utils_logging.setLogLevel(utils_logging.LOG_LEVEL_ERROR)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(_CV_LOG_LEVEL_ERROR)


def run_until_signal(run: Callable[[argparse.Namespace, threading.Event], int], args: argparse.Namespace,
                     log: logging.Logger) -> int:
    """``run(args, stop)`` with ``stop`` set by SIGTERM or SIGINT; its exit code, or the RoverError's."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(args, stop)
    except RoverError as exc:
        log.error("%s", exc)
        return exc.exit_code
    finally:
        logging.shutdown()
