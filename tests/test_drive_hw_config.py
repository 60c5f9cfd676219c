"""The [picar_b] section: the kit's defaults, overrides, and one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from rover.core.config import load_sections, reference, with_overrides
from rover.core.errors import ConfigError
from rover.hw.config import PicarBConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "rover.example.toml"


def load(tmp_path: Path, text: str) -> PicarBConfig:
    path = tmp_path / "rover.toml"
    path.write_text(text)
    return load_sections(path, {"picar_b": PicarBConfig})["picar_b"]


def test_defaults_are_the_vendor_wiring() -> None:
    cfg = PicarBConfig()
    assert (cfg.right_enable_pin, cfg.right_in1_pin, cfg.right_in2_pin) == (4, 14, 15)
    assert (cfg.left_enable_pin, cfg.left_in1_pin, cfg.left_in2_pin) == (17, 27, 18)
    assert cfg.motor_pwm_hz == 1000.0 and (cfg.i2c_bus, cfg.i2c_address, cfg.servo_hz) == (1, 0x40, 50.0)
    steering, pan, tilt = cfg.servo("steering"), cfg.servo("pan"), cfg.servo("tilt")
    assert (steering.channel, steering.centre, steering.min, steering.max, steering.direction) == (2, 300, 150, 450, 1)
    assert (pan.channel, pan.centre, pan.min, pan.max) == (1, 300, 150, 450)
    assert (tilt.channel, tilt.min, tilt.max, tilt.direction) == (0, 100, 500, 1)  # vendor up(): more ticks
    assert (cfg.ultrasonic_trigger_pin, cfg.ultrasonic_echo_pin, cfg.ultrasonic_max_m) == (11, 8, 9.0)


def test_every_number_is_overridable_from_the_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, "[picar_b]\nsteering_centre = 310\nsteering_direction = -1\ni2c_address = 0x41\n"
                         "right_enable_pin = 5\nmax_duty = 60\n")
    assert (cfg.steering_centre, cfg.steering_direction, cfg.i2c_address, cfg.right_enable_pin) == (310, -1, 0x41, 5)
    assert cfg.max_duty == 60.0


def test_example_section_parses_to_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, EXAMPLE.read_text()) == PicarBConfig()


@pytest.mark.parametrize("text, named", [
    ("steering_centre = 500", "steering_centre"),
    ("left_in1_pin = 4", "right_enable_pin"),
    ("pan_channel = 2", "steering_channel"),
    ("steering_direction = 0", "steering_direction"),
    ("servo_hz = 2000", "servo_hz"),
    ("right_enable_pin = 40", "right_enable_pin"),
    ("i2c_address = 300", "i2c_address"),
    ("max_duty = 0", "max_duty"),
    ("steering_speed = 1", "picar_b.steering_speed"),
])
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f"[picar_b]\n{text}\n")
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert caught.value.exit_code == 78


def test_command_line_overrides_are_checked_too() -> None:
    assert with_overrides(PicarBConfig(), steering_centre=320).steering_centre == 320
    with pytest.raises(ConfigError, match="steering_min"):
        with_overrides(PicarBConfig(), steering_centre=4000)


def test_reference_lists_every_key_with_its_default() -> None:
    table = reference({"picar_b": PicarBConfig})
    assert "| `picar_b.steering_centre` | int | `300` |" in table
    assert "| `picar_b.allow_reverse` | bool | `true` |" in table


@pytest.mark.slow
def test_importing_the_hardware_modules_loads_no_vendor_library() -> None:
    import subprocess
    import sys

    code = ("import sys, rover.hw, rover.hw.picar_b, rover.hw.log, rover.hw.safestop, rover.hw.calibrate; "
            "print(sorted(m for m in ('RPi', 'RPi.GPIO', 'smbus2', 'torch', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_2018_snippet_in_the_hardware_doc_is_a_valid_config(tmp_path) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "hardware.md").read_text()
    snippet = doc.split("<!-- 2018 snippet: start -->")[1].split("<!-- 2018 snippet: end -->")[0]
    snippet = snippet.strip().removeprefix("```toml").removesuffix("```")
    cfg = load(tmp_path, snippet)
    # the 2018 original (adeept/Adeept_PiCar-B_oldversion set.txt, turn.py): 60 Hz, steering middle 370
    assert cfg.servo_hz == 60.0 and cfg.servo("steering").centre == 370
    assert (cfg.right_enable_pin, cfg.left_enable_pin, cfg.right_direction, cfg.left_direction) == (17, 4, 1, 1)
