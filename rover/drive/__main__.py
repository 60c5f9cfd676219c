"""``rover-drive`` / ``python -m rover.drive``: follow a detected object with the car.

Start-up order is the safety order: config and label are checked first (a bad
one exits 78 with one line before anything is opened), then the chassis is
opened and set safe (any error a vendor library raises while it opens is one
HardwareError line), and only then are the sockets opened and systemd told
READY=1. Every exit path (normal, SIGINT, SIGTERM, SIGHUP, SIGQUIT, any exception) goes through
``chassis.close()``, which stops the motors and centres the servos.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from rover.core.config import DEFAULT_CONFIG_PATH, default_config_path, load_sections, with_overrides
from rover.core.errors import EXIT_FAILURE, EXIT_OK, ConfigError, HardwareError, RoverError
from rover.core.sdnotify import Notifier
from rover.drive.config import DriveConfig
from rover.drive.labels import check_label
from rover.drive.loop import DriveLoop
from rover.drive.receiver import DetectionSubscriber, StatusPublisher
from rover.hw.sentinel import HEARTBEAT_S, STOP_SIGNALS, Sentinel, safe_before_suspend
from rover.hw import KIT_SECTIONS, open_chassis, section_for
from rover.hw.carlock import LOCK_NAME, lock_the_car  # noqa: F401 - moved to rover.hw (rover-calibrate takes it too); LOCK_NAME re-exported
from rover.hw.kits import KITS
from rover.hw.chassis import Chassis

log = logging.getLogger("rover.drive")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rover-drive",
        description="Follow a detected object (default: a person) with the PiCar-B, "
        "reading the detector's ZeroMQ stream.",
    )
    parser.add_argument("--config", type=Path, default=None,
                        help=f"TOML config file, section [drive] (default: {DEFAULT_CONFIG_PATH} if it exists)")
    parser.add_argument("--follow", metavar="LABEL", help="label to follow, e.g. person")
    parser.add_argument("--connect", metavar="ENDPOINT", help="detection stream endpoint (default ipc://detections, in rover's runtime directory)")
    parser.add_argument("--publish", metavar="ENDPOINT", help="drive status endpoint to bind (default ipc://drive, in rover's runtime directory; '' disables)")
    parser.add_argument("--backend", metavar="NAME", help="chassis backend: picar-b (default, 2019-23 kit), picar-b2 "
                        "(kit sold since 2024) or log (dry run, prints commands)")
    parser.add_argument("--max-throttle", type=float, help="speed limit, fraction of full motor duty (0..1)")
    parser.add_argument("--max-age", dest="max_age_s", type=float, help="ignore detections older than this (seconds)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def load_config(args: argparse.Namespace) -> tuple[DriveConfig, Any]:
    """The [drive] section (with the flags applied) and the kit section its backend reads.

    With ``bumper_m = 0`` the kit is opened without its ultrasonic sensor, so
    its pins are not claimed (on the 2019-23 kit the echo pin may be SPI's).
    A bumper with the kit's sensor disabled is a ConfigError (exit 78): the
    bumper is never silently missing.
    """
    path = args.config
    if path is None:
        path = default_config_path()
    loaded = load_sections(path, {"drive": DriveConfig, **KIT_SECTIONS})
    drive = with_overrides(loaded["drive"], follow=args.follow, connect=args.connect, publish=args.publish,
                           backend=args.backend, max_throttle=args.max_throttle, max_age_s=args.max_age_s)
    kit = loaded[section_for(drive.backend)]
    section = section_for(drive.backend)
    if drive.bumper_m > 0 and not kit.ultrasonic_enabled and drive.backend in KITS:
        raise ConfigError(f"drive.bumper_m = {drive.bumper_m:g} needs the ultrasonic sensor, but "
                          f"{section}.ultrasonic_enabled = false: enable it, or set drive.bumper_m = 0 "
                          f"to drive without the bumper")
    if drive.bumper_m == 0 and kit.ultrasonic_enabled:
        kit = dataclasses.replace(kit, ultrasonic_enabled=False)
    return drive, kit


def open_backend(name: str, config: Any) -> Chassis:
    """:func:`open_chassis`, with whatever a vendor library raises while opening turned into a HardwareError."""
    try:
        return open_chassis(name, config)
    except RoverError:
        raise
    except Exception as exc:  # noqa: BLE001 - RPi.GPIO's RuntimeError, lgpio's errors, FileNotFoundError...
        raise HardwareError(
            f"chassis backend {name!r} cannot be opened ({type(exc).__name__}: {exc}); use --backend log for a dry run"
        ) from None


class HeartbeatNotifier(Notifier):
    """systemd's notifier whose watchdog ping also beats the sentinel's heartbeat, from the loop itself.

    The loop pings at least every HEARTBEAT_S (rover.hw.sentinel): a hung
    or stopped loop goes quiet, and the sentinel kills it and stops the car.
    """

    def __init__(self, sentinel: Sentinel) -> None:
        super().__init__()
        self._sentinel = sentinel
        self._systemd_watchdog = self.watchdog_interval is not None
        self.watchdog_interval = min(self.watchdog_interval or HEARTBEAT_S, HEARTBEAT_S)

    def watchdog(self) -> bool:
        if self._sentinel.stopped():  # SIGSTOPped: it would not stop the car if this process were killed
            raise RoverError(f"the drive's sentinel (pid {self._sentinel.pid}) is stopped (SIGSTOP): "
                             "stopping, since nothing would stop the car if this process were killed")
        self._sentinel.heartbeat()
        return super().watchdog() if self._systemd_watchdog else False


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="rover-drive: %(levelname)s: %(message)s", stream=sys.stderr)
    stop = {"requested": False, "sentinel_died": False}
    loop: DriveLoop | None = None
    sentinel: Sentinel | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stop["requested"] = True
        if loop is not None:
            loop.stop_requested = True

    held: dict[str, Any] = {}

    def on_suspend(signum: int, _frame: Any) -> None:
        """Ctrl-Z: the car safe first, then stop as the shell asked; on SIGCONT every command is sent again."""
        safe_before_suspend(held.get("chassis"), sentinel, report=log.error)
        os.kill(os.getpid(), signal.SIGSTOP)
        if loop is not None:
            loop.sent = None  # resumed: what the chassis was told is the safe state, not the loop's last commands

    def on_child(signum: int, _frame: Any) -> None:
        if sentinel is not None and sentinel.exited() is not None:  # the car's stop if we are killed: gone
            on_signal(signum, _frame)
            stop["sentinel_died"] = True

    # SIGHUP (the terminal or the SSH session gone) and SIGQUIT (Ctrl-\\) stop the car like SIGTERM:
    # their default action would end the process without its finally.
    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    signal.signal(signal.SIGCHLD, on_child)  # before the sentinel starts: no window where its death is missed
    signal.signal(signal.SIGTSTP, on_suspend)
    opening = False
    try:
        config, backend_config = load_config(args)
        check_label(config.follow)  # refuses typos now; the warning is logged once the stream is seen
        lock = lock_the_car(config.backend)  # held (open) until this process and its sentinel exit
        # Stops the car should this process die without its finally (kill -9): see rover.hw.sentinel.
        sentinel = Sentinel.start({"drive": config, section_for(config.backend): backend_config},
                                  keep_fds=() if lock is None else (lock.fileno(),))  # it holds the lock till the stop
        on_child(signal.SIGCHLD, None)  # it may have died before `sentinel` was set
        opening = True
        chassis = open_backend(config.backend, backend_config)  # HardwareError names --backend log
    except RoverError as exc:
        if sentinel is not None:
            if opening and getattr(exc, "hardware_touched", False):
                sentinel.release()  # the open failed halfway, a motor may be driven: it stops the car once we exit
            else:
                sentinel.stand_down()  # nothing was opened
        print(f"rover-drive: {exc}", file=sys.stderr)
        return exc.exit_code
    notifier = HeartbeatNotifier(sentinel)
    held["chassis"] = chassis
    subscriber = publisher = None
    try:
        chassis.safe()  # outputs neutral before any socket opens
        subscriber = DetectionSubscriber(config.connect)
        publisher = StatusPublisher(config.publish) if config.publish else None
        loop = DriveLoop(config, chassis, subscriber, publisher, notifier=notifier)
        loop.stop_requested = stop["requested"]
        notifier.ready(f"SAFE: following {config.follow!r}")
        log.info("following %r from %s with backend %s%s", config.follow, subscriber.endpoint, config.backend,
                 f", status on {publisher.address}" if publisher else "")
        loop.run()
        if stop["sentinel_died"]:
            raise RoverError(f"the drive's sentinel (pid {sentinel.pid}) died (exit status {sentinel.exited()}): "
                             "stopping, since nothing would stop the car if this process were killed")
        log.info("stopping on signal")
        return EXIT_OK
    except RoverError as exc:
        print(f"rover-drive: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:  # noqa: BLE001 - a bug: report it with its traceback, the finally still stops the car
        log.exception("unexpected error; stopping the car")
        return EXIT_FAILURE
    finally:
        notifier.stopping()
        sentinel.pause()  # no heartbeats while closing (the ranger's join may take a second)
        try:
            chassis.close()  # motors off, servos centred
            sentinel.stand_down()
        except Exception as exc:  # noqa: BLE001 - nothing more this process can do; the sentinel tries once we are gone
            log.error("stopping the car failed: %s; the sentinel tries again once this process has exited", exc)
            sentinel.release()
        for sock in (subscriber, publisher):
            if sock is not None:
                sock.close()
        notifier.close()


if __name__ == "__main__":
    sys.exit(main())
