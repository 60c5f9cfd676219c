"""rover-safestop: the safe state without (and after the death of) the drive process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rover.hw.config import PicarBConfig
from rover.hw.safestop import main, safe_stop, stop_picar_b
from tests.fakehw.RPi.GPIO import FakeGPIO
from tests.fakehw.smbus2 import I2CWorld, SMBus
from tests.fixtures_drive import FakeHwEnv, FakePicar

CONFIG = "[picar_b]\nsteering_centre = 310\nultrasonic_enabled = false\n"

DRIVE_LIKE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rover.core.config import load_sections
    from rover.hw import open_chassis
    from rover.hw.config import PicarBConfig
    config = load_sections(Path(sys.argv[1]), {"picar_b": PicarBConfig})["picar_b"]
    chassis = open_chassis("picar-b", config)
    chassis.drive(0.8)
    chassis.steer(1.0)
    chassis.pan(-1.0)
    print("driving", flush=True)
    time.sleep(60)
""")


def assert_safe(board, chip, config: PicarBConfig) -> None:
    for pin in config.motor_pins:
        view = board.pin(pin)
        assert (view.function, view.level, view.duty) == ("OUT", 0, None), (pin, view)
    for name in ("steering", "pan", "tilt"):
        servo = config.servo(name)
        assert chip.pulse_ticks(servo.channel) == servo.centre, name
    assert not chip.sleeping and chip.prescale == 121


def test_after_the_drive_process_died_pins_go_low_and_servos_centre(fake_picar: FakePicar) -> None:
    car = fake_picar
    car.chassis.drive(0.7)
    car.chassis.steer(-1.0)
    car.gpio.simulate_kill()  # no close(): the PWM threads die, an enable pin is stuck HIGH
    assert car.board.pin(car.config.right_enable_pin).level == 1
    slept: list[float] = []
    failures = stop_picar_b(car.config, gpio=FakeGPIO(car.board), bus=SMBus(1, world=car.world), sleep=slept.append)
    assert failures == []
    assert_safe(car.board, car.chip, car.config)
    assert slept == []  # the chip was running: no wait at all
    car.chassis._abandon()  # the "dead" chassis must not touch the pins again at teardown


def test_it_wakes_a_sleeping_chip_with_only_the_oscillator_delay() -> None:
    from tests.fakehw.RPi.GPIO import Board

    board, world = Board(), I2CWorld()
    slept: list[float] = []
    assert stop_picar_b(PicarBConfig(), gpio=FakeGPIO(board), bus=SMBus(1, world=world), sleep=slept.append) == []
    assert_safe(board, world.chip(), PicarBConfig())
    assert slept == [500e-6]


def test_one_half_failing_does_not_skip_the_other() -> None:
    from tests.fakehw.RPi.GPIO import Board

    board = Board()
    failures = stop_picar_b(PicarBConfig(), gpio=FakeGPIO(board), bus=SMBus(1, world=I2CWorld(devices={1: []})))
    assert len(failures) == 1 and failures[0].startswith("servos NOT centred")
    assert all(board.pin(pin).level == 0 for pin in PicarBConfig().motor_pins)


@pytest.mark.slow
def test_subprocess_safestop_after_sigkill_is_safe_idempotent_and_quick(fakehw_env: FakeHwEnv, tmp_path: Path) -> None:
    config_path = tmp_path / "rover.toml"
    config_path.write_text(CONFIG)
    config = PicarBConfig(steering_centre=310, ultrasonic_enabled=False)
    drive = subprocess.Popen([sys.executable, "-c", DRIVE_LIKE, str(config_path)], env=fakehw_env.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert drive.stdout is not None and drive.stdout.readline().strip() == "driving", drive.stderr.read()
    finally:
        drive.send_signal(signal.SIGKILL)
        drive.wait(timeout=30)
    board, chip = fakehw_env.board(), fakehw_env.chip()
    assert board.pin(4).level == 1 and board.pin(4).duty is None  # PWM died with its process, pin stuck
    assert chip.pulse_ticks(2) == 450 and chip.pulse_ticks(1) == 150  # the chip keeps driving (310+150 held at max)
    for attempt in range(2):
        done = subprocess.run([sys.executable, "-m", "rover.hw.safestop", "--config", str(config_path)],
                              env=fakehw_env.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "motors off" in done.stdout and "steering ch2=310" in done.stdout
        assert_safe(fakehw_env.board(), fakehw_env.chip(), config)
    # idempotent and fast: the second run found the chip running and wrote only the three channels
    writes = fakehw_env.chip().writes()
    last_run = [w for w in writes if w["pid"] == writes[-1]["pid"]]
    assert len(last_run) == 3 * 4 and all(0x06 <= w["reg"] < 0x46 for w in last_run)


def test_a_bad_config_still_stops_the_car_with_the_defaults(tmp_path: Path, monkeypatch, capsys) -> None:
    import rover.hw.safestop as safestop
    from tests.fakehw.RPi.GPIO import Board

    bad = tmp_path / "rover.toml"
    bad.write_text("[picar_b]\nsteering_centre = 9000\n")
    board, world = Board(), I2CWorld()
    real = safestop.safe_stop
    monkeypatch.setattr(safestop, "safe_stop", lambda sections: real(sections, gpio=FakeGPIO(board),
                                                                      bus=SMBus(1, world=world)))
    assert main(["--config", str(bad)]) == 78
    err = capsys.readouterr().err
    assert "steering_centre" in err and "kit defaults" in err and len(err.strip().splitlines()) == 1
    assert_safe(board, world.chip(), PicarBConfig())


def test_without_rpi_gpio_the_servos_are_still_centred(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    world = I2CWorld()
    failures = stop_picar_b(PicarBConfig(), bus=SMBus(1, world=world), sleep=lambda s: None)
    assert len(failures) == 1 and "RPi.GPIO" in failures[0] and "\n" not in failures[0]
    assert world.chip().pulse_ticks(2) == 300


class LgpioLikeGPIO:
    """A GPIO library that fails the way lgpio does under a read-only working directory."""

    BCM, OUT, LOW = 11, 0, 0

    def setwarnings(self, flag: bool) -> None:
        pass

    def setmode(self, mode: int) -> None:
        raise FileNotFoundError(2, "No such file or directory", ".lgd-nfy0")


def test_any_gpio_failure_still_centres_the_servos_and_says_what_to_do() -> None:
    world = I2CWorld()
    failures = stop_picar_b(PicarBConfig(), gpio=LgpioLikeGPIO(), bus=SMBus(1, world=world), sleep=lambda s: None)
    assert len(failures) == 1 and failures[0].startswith("motors NOT stopped") and "FileNotFoundError" in failures[0]
    assert [world.chip().pulse_ticks(ch) for ch in (2, 1, 0)] == [300, 300, 300]


def test_an_unreadable_default_config_stops_the_car_with_the_defaults(tmp_path: Path, monkeypatch, capsys) -> None:
    import rover.hw.safestop as safestop
    from tests.fakehw.RPi.GPIO import Board

    class Unreadable(type(Path())):
        def is_file(self) -> bool:
            raise PermissionError(13, "Permission denied", str(self))

    import rover.core.config

    monkeypatch.setattr(rover.core.config, "DEFAULT_CONFIG_PATH", Unreadable(tmp_path / "etc-rover" / "rover.toml"))
    board, world = Board(), I2CWorld()
    real = safestop.safe_stop
    monkeypatch.setattr(safestop, "safe_stop", lambda sections: real(sections, gpio=FakeGPIO(board), bus=SMBus(1, world=world)))
    assert main([]) == 78
    err = capsys.readouterr().err
    assert "rover.toml" in err and "kit defaults" in err and len(err.strip().splitlines()) == 1
    assert_safe(board, world.chip(), PicarBConfig())


def test_safe_stop_takes_the_loaded_sections_and_stops_the_kit_they_name() -> None:
    from tests.fakehw.RPi.GPIO import Board

    board, world = Board(), I2CWorld()
    config = PicarBConfig(steering_centre=320)
    sections = {"drive": {"backend": "picar-b"}, "picar_b": config}
    assert safe_stop(sections, gpio=FakeGPIO(board), bus=SMBus(1, world=world), sleep=lambda s: None) == []
    assert world.chip().pulse_ticks(2) == 320
    assert all(board.pin(pin).level == 0 for pin in config.motor_pins)
    # a missing [drive] means the default backend, a missing kit section its defaults
    assert safe_stop({}, gpio=FakeGPIO(board), bus=SMBus(1, world=world), sleep=lambda s: None) == []
    assert world.chip().pulse_ticks(2) == 300
