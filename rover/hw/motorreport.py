"""What ``rover-calibrate motors`` prints and writes: the steps, the fit, and the two config keys.

:func:`write_keys` is ``--write``: it builds the new file in memory, checks
it (TOML, the kit's section and the ``[drive]`` section as rover-drive will
load them, and that the two keys hold the measured values) before the file
is touched, then replaces it atomically (a temporary file in the same
directory, fsynced, with the original's mode and owner, ``os.replace`` on
the resolved path): a failed check, a full disk or a power cut leaves the
old file as it was.
"""

from __future__ import annotations

import importlib
import math
import os
import tomllib
from pathlib import Path

from rover.core.config import DEFAULT_CONFIG_PATH, from_dict
from rover.core.errors import ConfigError
from rover.hw.motorcal import RunResult
from rover.hw.tomledit import set_keys

#: The [drive] section's class, loaded only to check a --write (rover.hw never imports rover.drive: tests/test_layout.py).
DRIVE_CONFIG = "rover.drive.config:DriveConfig"


def report(result: RunResult, section: str, path: Path | None, refused: list[str]) -> None:
    """The steps, the fit with its uncertainty, the measured coast and the keys to set."""
    cal = result.calibration
    assert cal is not None
    travelled = result.travel_m if result.final_m is None else result.baseline_m - result.final_m
    print(f"started {result.baseline_m:.2f} m from the wall, stopped at {_metres(result.final_m)} "
          f"({travelled:.2f} m travelled): {result.stop_reason}")
    if result.coast_m is not None:
        print(f"coast: the car rolled {result.coast_m:.2f} m after the motors went off at up to {result.stop_speed_mps:.2f} m/s "
              "(the run's stop margin assumes speed x 0.3 s)")
    print("duty %   speed m/s  readings  residual m  moved")
    for step in result.steps:
        est = step.estimate
        speed = "     -   " if est is None else f"{est.speed_mps:9.3f}"
        print(f"{step.duty_pct:6.1f} {speed}  {0 if est is None else est.samples:8d}  "
              f"{'     -' if est is None else f'{est.residual_m:10.4f}'}  {'yes' if step.moved else 'no'}")
    line = cal.line
    print(f"dead band: the car moved from rest at {cal.min_duty_pct:g} % (stood still at {cal.still_duty_pct:g} %); "
          f"the speed line crosses zero at {line.zero_duty_pct:.1f} %")
    stderr = cal.top_stderr_mps
    print(f"speed line: {line.slope_mps_per_pct * 100:.3f} m/s per 100 % duty over {line.samples} steps "
          f"({cal.fitted_from_pct:g} to {cal.fitted_to_pct:g} %), RMS residual {line.residual_mps:.3f} m/s; "
          f"at {cal.max_duty_pct:g} % duty (max_duty): {cal.top_speed_mps:.2f} m/s, standard error "
          f"{'unknown' if not math.isfinite(stderr) else f'{stderr:.3f} m/s'}"
          f"{f', extrapolated {cal.extrapolated_pct:.1f} duty points beyond the highest step' if cal.extrapolated else ''}")
    for why in refused:
        print(f"not good enough to write: {why}")
    print(f"set these keys in {path or DEFAULT_CONFIG_PATH}, each in its section (--write does it):")
    for text in config_lines(result, section):
        print(text)


def config_lines(result: RunResult, section: str) -> list[str]:
    cal = result.calibration
    assert cal is not None
    return [f"  in [{section}]: min_duty = {cal.min_duty_pct:g}", f"  in [drive]: top_speed_mps = {cal.top_speed_mps:.2f}"]


def check_writable(path: Path) -> None:
    """ConfigError (before anything is driven) unless ``--write`` can replace ``path``."""
    target = path.resolve()
    folder = target.parent
    if target.exists() and not os.access(target, os.R_OK):
        raise ConfigError(f"--write: cannot read {target}: run as its owner (or with sudo)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--write: cannot create a file in {folder} (the new config replaces {target.name} "
                          "atomically): run as a user who may, or without --write and set the keys by hand")


def write_keys(path: Path, section: str, kit_cls: type, result: RunResult) -> None:
    """Set ``[section] min_duty`` and ``[drive] top_speed_mps`` in ``path``; ConfigError (the file untouched) if the
    new text would not load."""
    cal = result.calibration
    assert cal is not None
    target = path.resolve()
    text = target.read_text(encoding="utf-8-sig") if target.exists() else ""  # a BOM is dropped, never doubled
    min_duty, top = f"{cal.min_duty_pct:g}", f"{cal.top_speed_mps:.2f}"
    new = set_keys(text, {section: {"min_duty": min_duty}, "drive": {"top_speed_mps": top}})
    _check(new, target, section, kit_cls, float(min_duty), float(top))
    temporary = target.with_name(f".{target.name}.calibrate-{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
            handle.flush()
            if target.exists():
                info = target.stat()
                os.fchmod(handle.fileno(), info.st_mode & 0o7777)
                if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.fchown(handle.fileno(), info.st_uid, info.st_gid)  # as root: root:rover stays root:rover
                    except PermissionError:
                        if info.st_gid in os.getgroups():
                            os.fchown(handle.fileno(), -1, info.st_gid)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise ConfigError(f"--write: could not replace {target} ({exc.strerror or exc}): the file is as it was") from None
    finally:
        if temporary.exists():
            temporary.unlink()
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _check(new: str, target: Path, section: str, kit_cls: type, min_duty: float, top: float) -> None:
    where = f" in {target} as --write would leave it"
    try:
        data = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--write would make {target} invalid TOML ({exc}): the file is untouched; "
                          "set the keys by hand") from None
    if data.get(section, {}).get("min_duty") != min_duty or data.get("drive", {}).get("top_speed_mps") != top:
        raise ConfigError(f"--write could not set {section}.min_duty and drive.top_speed_mps in {target} (quoted or "
                          "dotted keys?): the file is untouched; set the keys by hand")
    module, _, name = DRIVE_CONFIG.partition(":")
    drive_cls = getattr(importlib.import_module(module), name)
    from_dict(kit_cls, data.get(section, {}), section, where)  # ConfigError names the key (min_duty >= max_duty ...)
    from_dict(drive_cls, data.get("drive", {}), "drive", where)


def _metres(value: float | None) -> str:
    return "an unknown range" if value is None else f"{value:.2f} m"

