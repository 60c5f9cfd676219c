"""The nine ``ultrasonic_*`` keys: one definition for both kit sections, each kit with its own defaults.

The file users write is unchanged (flat keys in ``[picar_b]`` and
``[picar_b2]``), so are the reference's rows and their order; unknown keys
are still refused with their name.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from rover.core.config import from_dict, load_sections, reference
from rover.core.errors import ConfigError
from rover.hw.config import ULTRASONIC_KEYS, PicarBConfig, ultrasonic_keys
from rover.hw.config_b2 import PicarB2Config
from rover.hw.kits import KIT_SECTIONS

NAMES = [key.name for key in ULTRASONIC_KEYS]
KITS = [("picar_b", PicarBConfig), ("picar_b2", PicarB2Config)]


def test_there_are_nine_keys_and_every_kit_has_them_last_in_the_same_order_and_types() -> None:
    assert len(NAMES) == 9 and all(name.startswith("ultrasonic_") for name in NAMES)
    for _, cls in KITS:
        fields = dataclasses.fields(cls)
        assert [f.name for f in fields][-9:] == NAMES  # after the kit's own keys, as the reference lists them
        assert fields[-10].name == "tilt_direction"
        hints = typing.get_type_hints(cls)
        assert [hints[name] for name in NAMES] == [key.type for key in ULTRASONIC_KEYS]


def test_each_kit_keeps_its_defaults() -> None:
    b, b2 = PicarBConfig(), PicarB2Config()
    assert (b.ultrasonic_trigger_pin, b.ultrasonic_echo_pin, b.ultrasonic_max_m) == (11, 8, 9.0)  # adeept_picar-b
    assert (b2.ultrasonic_trigger_pin, b2.ultrasonic_echo_pin, b2.ultrasonic_max_m) == (23, 24, 2.0)  # adeept_picar-b2
    for config in (b, b2):
        assert (config.ultrasonic_enabled, config.ultrasonic_interval_s, config.ultrasonic_timeout_s,
                config.ultrasonic_retries, config.ultrasonic_stale_s, config.ultrasonic_samples) == (True, 0.1, 0.06, 3, 1.0, 3)


def test_the_descriptions_come_from_one_definition_with_the_vendor_notes_of_each_kit() -> None:
    docs = {section: {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)} for section, cls in KITS}
    assert docs["picar_b"]["ultrasonic_trigger_pin"] == "HC-SR04 trigger (BCM)"
    assert docs["picar_b2"]["ultrasonic_trigger_pin"] == "HC-SR04 trigger (BCM; vendor Tr = 23)"
    assert docs["picar_b"]["ultrasonic_max_m"] == "readings above this many metres are invalid (vendor: 9)"
    assert docs["picar_b2"]["ultrasonic_max_m"] == "readings above this many metres are invalid (vendor: max_distance=2)"
    assert docs["picar_b"]["ultrasonic_retries"].endswith("counts as missing (vendor: 5)")
    assert docs["picar_b2"]["ultrasonic_retries"].endswith("counts as missing")
    same = [name for name in NAMES if name not in ("ultrasonic_trigger_pin", "ultrasonic_echo_pin", "ultrasonic_max_m",
                                                    "ultrasonic_retries")]
    assert all(docs["picar_b"][name] == docs["picar_b2"][name] for name in same)


def test_the_reference_rows_of_both_sections_are_in_the_readme_in_their_old_order() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = reference(KIT_SECTIONS)
    assert table.splitlines()[2:] and all(row in readme for row in table.splitlines()[2:])
    rows = [row for row in readme.splitlines() if row.startswith("| `picar_b")]
    sections = [row.split("`")[1].split(".")[0] for row in rows]
    assert sections == sorted(sections, key=["picar_b", "picar_b2"].index)  # [picar_b] first, then [picar_b2]
    for section in ("picar_b", "picar_b2"):
        keys = [row.split("`")[1].split(".")[1] for row in rows if row.startswith(f"| `{section}.")]
        assert keys[-9:] == NAMES and keys[-10] == "tilt_direction"


def test_the_file_format_is_unchanged_and_values_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "rover.toml"
    path.write_text("[picar_b]\nultrasonic_trigger_pin = 5\nultrasonic_max_m = 4\n"
                    "[picar_b2]\nultrasonic_echo_pin = 25\nultrasonic_samples = 5\nultrasonic_enabled = false\n")
    loaded = load_sections(path, dict(KITS))
    assert (loaded["picar_b"].ultrasonic_trigger_pin, loaded["picar_b"].ultrasonic_max_m) == (5, 4.0)
    assert loaded["picar_b2"].ultrasonic_echo_pin == 25 and loaded["picar_b2"].ultrasonic_samples == 5
    assert loaded["picar_b2"].ultrasonic_enabled is False
    with pytest.raises(ConfigError, match="picar_b2.ultrasonic_retries must be"):
        from_dict(PicarB2Config, {"ultrasonic_retries": "3"}, "picar_b2")


@pytest.mark.parametrize("section, cls", KITS)
def test_unknown_keys_are_refused_with_their_name(section: str, cls: type) -> None:
    with pytest.raises(ConfigError, match=rf"unknown key {section}\.ultrasonic_trigger\b"):
        from_dict(cls, {"ultrasonic_trigger": 5}, section)


@pytest.mark.parametrize("section, cls", KITS)
@pytest.mark.parametrize("values, message", [
    ({"ultrasonic_samples": 4}, "ultrasonic_samples = 4 must be odd"),
    ({"ultrasonic_retries": 0}, "ultrasonic_retries = 0 must be at least 1"),
    ({"ultrasonic_stale_s": 0.0}, "ultrasonic_stale_s = 0.0 must be a positive number"),
    ({"ultrasonic_echo_pin": 30}, "ultrasonic_echo_pin = 30 is not a header GPIO"),
    ({"ultrasonic_trigger_pin": 9, "ultrasonic_echo_pin": 9}, "are both BCM 9"),
])
def test_one_validation_for_both_kits(section: str, cls: type, values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(cls, values, section)


def test_pins_of_a_disabled_sensor_are_not_checked() -> None:
    for _, cls in KITS:
        assert cls(ultrasonic_enabled=False, ultrasonic_echo_pin=99).ultrasonic_echo_pin == 99


def test_a_kit_section_cannot_redefine_a_key_nor_leave_a_kit_default_out() -> None:
    with pytest.raises(TypeError, match="defines ultrasonic_samples itself"):
        @ultrasonic_keys(trigger_pin=1, echo_pin=2, max_m=3.0)
        class Twice:
            ultrasonic_samples: int = 3
    with pytest.raises(TypeError, match="no ultrasonic key pins"):
        ultrasonic_keys(trigger_pin=1, echo_pin=2, max_m=3.0, pins=4)
    with pytest.raises(TypeError, match="must be of type int"):
        @ultrasonic_keys(trigger_pin=1, echo_pin=2, max_m=3.0, retries=2.5)
        class Fractional:
            pass
