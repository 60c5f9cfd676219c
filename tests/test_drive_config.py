"""The [drive] section: documented example, refusals and flag overrides."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from rover.core.config import load_sections, with_overrides
from rover.core.errors import ConfigError
from rover.drive.config import DriveConfig

REPO = Path(__file__).resolve().parents[1]


def test_example_section_lists_every_key_with_its_default() -> None:
    data = tomllib.loads((REPO / "config" / "rover.example.toml").read_text())
    assert "drive" in data
    assert set(data["drive"]) == {f.name for f in dataclasses.fields(DriveConfig)}
    path = REPO / "config" / "rover.example.toml"
    assert load_sections(path, {"drive": DriveConfig})["drive"] == DriveConfig()


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("deadman_s = 0", "deadman_s"),
        ("max_throttle = 1.5", "max_throttle"),
        ("arm_count = 0", "arm_count"),
        ("lock_frames = 0", "lock_frames"),
        ("lock_max_size_ratio = 1.0", "lock_max_size_ratio"),
        ("tick_s = 0.5", "tick_s"),
        ("arm_count = 2.5", "drive.arm_count"),
        ("follow = \"\"", "follow"),
        ("speed = 1", "drive.speed"),
        ("person_height_m = inf", "drive.person_height_m in .* must be a finite number"),
        ("stop_distance_m = inf", "drive.stop_distance_m in .* must be a finite number"),
        ("follow_distance_m = inf", "drive.follow_distance_m in .* must be a finite number"),
        ("range_gain = nan", "drive.range_gain in .* must be a finite number"),
        ("max_age_s = 1e9", "max_age_s must be at most 5"),
        ("deadman_s = 1e9", "deadman_s must be at most 5"),
        ("camera_hfov_deg = 200", "camera_hfov_deg must be less than 180"),
        ("camera_vfov_deg = 180", "camera_vfov_deg must be less than 180"),
        ("pan_range_deg = 170", "pan_range_deg must be at most 90"),
        ("max_steer_deg = 120", "max_steer_deg must be less than 90"),
        ("max_steer_deg = 90", "max_steer_deg must be less than 90"),
        ("follow_gap_s = 100", "follow_gap_s must be at most 3 s"),
        ("follow_gap_s = -0.1", "follow_gap_s must be 0 or more"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, toml: str, named: str) -> None:
    path = tmp_path / "rover.toml"
    path.write_text(f"[drive]\n{toml}\n")
    with pytest.raises(ConfigError, match=named) as info:
        load_sections(path, {"drive": DriveConfig})
    assert "\n" not in str(info.value)


def test_a_non_finite_number_is_refused_in_any_section_with_exit_78(tmp_path: Path) -> None:
    import subprocess
    import sys

    from rover.hw.config import PicarBConfig

    path = tmp_path / "rover.toml"
    path.write_text("[picar_b]\nmax_duty = inf\n")
    with pytest.raises(ConfigError, match="picar_b.max_duty in .* must be a finite number"):
        load_sections(path, {"picar_b": PicarBConfig})
    path.write_text("[drive]\nperson_height_m = inf\n")
    done = subprocess.run([sys.executable, "-m", "rover.drive", "--config", str(path), "--backend", "log"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 78
    assert done.stderr.strip().count("\n") == 0 and "person_height_m in" in done.stderr and "must be a finite number" in done.stderr
    with pytest.raises(ValueError, match="person_height_m must be a finite number"):
        DriveConfig(person_height_m=float("inf"))


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rover.toml"
    path.write_text("[drive]\nfollow = \"dog\"\nmax_throttle = 0.3\n")
    config = load_sections(path, {"drive": DriveConfig})["drive"]
    assert (config.follow, config.max_throttle) == ("dog", 0.3)
    config = with_overrides(config, follow="person", max_throttle=None, backend="log")
    assert (config.follow, config.max_throttle, config.backend) == ("person", 0.3, "log")


@pytest.mark.parametrize(("key", "replacement"), [("target_height = 0.6", "follow_distance_m"),
                                                  ("speed_gain = 1.5", "range_gain"),
                                                  ("steer_kp = 1.2", "steer_gain"),
                                                  ("latency_nominal_s = 0.15", "travel_bound_m")])
def test_an_old_config_key_is_refused_naming_its_replacement(tmp_path: Path, key: str, replacement: str) -> None:
    import subprocess
    import sys

    path = tmp_path / "rover.toml"
    path.write_text(f"[drive]\n{key}\n")
    with pytest.raises(ConfigError, match=f"was removed: use {replacement}"):
        load_sections(path, {"drive": DriveConfig})
    done = subprocess.run([sys.executable, "-m", "rover.drive", "--config", str(path), "--backend", "log"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 78
    assert done.stderr.strip().count("\n") == 0 and replacement in done.stderr


def test_the_follow_distance_keeps_a_stop_on_old_information_outside_the_stop_distance(tmp_path: Path) -> None:
    path = tmp_path / "rover.toml"
    path.write_text("[drive]\nfollow_distance_m = 2.0\nstop_distance_m = 1.0\ntravel_bound_m = 1.5\n")
    with pytest.raises(ConfigError, match="follow_distance_m .* at least stop_distance_m \\+ travel_bound_m"):
        load_sections(path, {"drive": DriveConfig})
