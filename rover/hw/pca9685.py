"""NXP PCA9685 16-channel PWM controller, over any smbus2-like bus.

The bus only needs smbus2's ``SMBus`` methods ``read_byte_data``,
``write_byte_data`` and ``write_i2c_block_data``, so tests pass a fake bus
whose device is a register model of the chip.

Datasheet facts this driver relies on:

- MODE1 (0x00): RESTART bit 7, AI (register auto-increment) bit 5, SLEEP
  bit 4 (power-on value 0x11: asleep, ALLCALL). MODE2 (0x01): OUTDRV bit 2
  (totem-pole outputs, what servo boards use).
- PRE_SCALE (0xFE) sets the PWM frequency, ``round(25 MHz / (4096 * f)) - 1``
  (121 for 50 Hz). The chip ignores writes to it unless SLEEP is set.
- After SLEEP is cleared the oscillator needs 500 us before RESTART may be
  written (and before the outputs are exact).
- Channel n has four registers from LED0_ON_L (0x06) + 4n: ON_L, ON_H, OFF_L,
  OFF_H; the output goes high at tick ON and low at tick OFF of each 4096-tick
  period. Bit 4 of ON_H is "full on", bit 4 of OFF_H "full off" (it wins).
  ALL_LED_OFF_H (0xFD) bit 4 turns every channel fully off at once.
- MODE2 OCH (bit 3) clear: outputs change on the I2C STOP, so one block
  write updates several channels together.
- The chip keeps driving the last pulse after the process that set it has
  died, which is why ``rover-safestop`` writes the centre pulses itself, and
  on the 2024 kit (motors on the chip) zero duty on the motor channels.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rover.core.errors import HardwareError

MODE1 = 0x00
MODE2 = 0x01
LED0_ON_L = 0x06
ALL_LED_OFF_H = 0xFD
PRE_SCALE = 0xFE

RESTART = 0x80
AI = 0x20
SLEEP = 0x10
ALLCALL = 0x01
OUTDRV = 0x04
FULL = 0x10  # bit 4 of LEDn_ON_H / LEDn_OFF_H

OSCILLATOR_HZ = 25_000_000
TICKS = 4096
#: Oscillator start-up time after SLEEP is cleared (datasheet: 500 us max).
OSCILLATOR_SETTLE_S = 500e-6
#: MODE1 while running: awake, auto-increment on (needed for 4-byte channel writes), ALLCALL as at power-on.
MODE1_RUNNING = AI | ALLCALL


def prescale_for(freq_hz: float) -> int:
    """PRE_SCALE value for ``freq_hz``: ``round(25 MHz / (4096 * freq)) - 1``; 121 at 50 Hz."""
    value = round(OSCILLATOR_HZ / (TICKS * freq_hz)) - 1
    if not 3 <= value <= 255:
        raise ValueError(f"{freq_hz} Hz needs prescale {value}; the PCA9685 allows 3..255 (24..1526 Hz)")
    return value


def frequency_for(prescale: int) -> float:
    """PWM frequency in Hz that ``prescale`` gives (inverse of :func:`prescale_for`)."""
    return OSCILLATOR_HZ / (TICKS * (prescale + 1))


#: ``ticks`` value meaning "high for the whole period" (bit 4 of ON_H), as a motor input needs.
FULL_ON = TICKS


def channel_bytes(ticks: int) -> list[int]:
    """ON_L, ON_H, OFF_L, OFF_H for a pulse of ``ticks``.

    0 = full off (bit 4 of OFF_H), 1..4095 = high from tick 0 to ``ticks``,
    4096 (:data:`FULL_ON`) = full on (bit 4 of ON_H, OFF_H clear, since full
    off wins over full on). The same encoding as Adafruit's PCA9685 driver
    gives a 16-bit ``duty_cycle`` of 0, ``ticks << 4`` and 0xFFFF.
    """
    if not 0 <= ticks <= TICKS:
        raise ValueError(f"PCA9685 pulse must be 0..4096 ticks, not {ticks}")
    if ticks == 0:
        return [0, 0, 0, FULL]
    if ticks == FULL_ON:
        return [0, FULL, 0, 0]
    return [0, 0, ticks & 0xFF, ticks >> 8]


class PCA9685:
    """One PCA9685 on an open bus. ``sleep`` is injected so tests need not wait."""

    def __init__(self, bus: Any, address: int = 0x40, *, bus_number: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._bus = bus
        self.address = address
        self._where = f"PCA9685 at {address:#04x}" + (f" on /dev/i2c-{bus_number}" if bus_number is not None else "")
        self._sleep = sleep
        self._bus_number = bus_number

    def is_running_at(self, freq_hz: float) -> bool:
        """True if the chip is awake, auto-incrementing and set to ``freq_hz`` already."""
        mode1 = self._read(MODE1)
        return not mode1 & SLEEP and bool(mode1 & AI) and self._read(PRE_SCALE) == prescale_for(freq_hz)

    def configure(self, freq_hz: float) -> None:
        """Set the PWM frequency and wake the chip, keeping the channel registers.

        Sequence from the datasheet: sleep (PRE_SCALE is only writable then),
        write PRE_SCALE, totem-pole outputs, wake with auto-increment, wait for
        the oscillator, and write RESTART if the chip flags that channels were
        running when it went to sleep.
        """
        prescale = prescale_for(freq_hz)
        mode1 = self._read(MODE1)
        self._write(MODE1, (mode1 & ~RESTART & 0xFF) | SLEEP)
        self._write(PRE_SCALE, prescale)
        self._write(MODE2, OUTDRV)
        self._write(MODE1, MODE1_RUNNING)
        self._sleep(OSCILLATOR_SETTLE_S)
        if self._read(MODE1) & RESTART:
            self._write(MODE1, MODE1_RUNNING | RESTART)

    def ensure(self, freq_hz: float) -> bool:
        """:meth:`configure` unless already running at ``freq_hz``; True if it configured."""
        if self.is_running_at(freq_hz):
            return False
        self.configure(freq_hz)
        return True

    def set_pulse(self, channel: int, ticks: int) -> None:
        """Drive ``channel`` (0..15) high for ``ticks`` of every 4096-tick period (0 = off)."""
        if not 0 <= channel <= 15:
            raise ValueError(f"PCA9685 channel must be 0..15, not {channel}")
        data = channel_bytes(ticks)
        try:
            self._bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * channel, data)
        except OSError as exc:
            raise self._error(exc) from None

    def set_pulses(self, first_channel: int, ticks: list[int]) -> None:
        """Channels ``first_channel``, ``first_channel + 1``, ... in ONE bus transaction (needs MODE1.AI).

        With MODE2.OCH clear (what :meth:`configure` writes) the chip updates
        its outputs on the transaction's STOP, so the channels change together:
        a motor's two inputs never pass through a state neither end has.
        """
        if not (0 <= first_channel and first_channel + len(ticks) <= 16 and ticks):
            raise ValueError(f"PCA9685 channels {first_channel}..{first_channel + len(ticks) - 1} are not within 0..15")
        data = [byte for value in ticks for byte in channel_bytes(value)]
        try:
            self._bus.write_i2c_block_data(self.address, LED0_ON_L + 4 * first_channel, data)
        except OSError as exc:
            raise self._error(exc) from None

    def full_off(self, channel: int) -> None:
        """``channel`` fully off with one byte (bit 4 of LEDn_OFF_H), whatever MODE1's AI or SLEEP.

        Safe-stop uses it before waking the chip: a chip asleep with a motor
        duty in its registers would drive that duty again once woken.
        """
        if not 0 <= channel <= 15:
            raise ValueError(f"PCA9685 channel must be 0..15, not {channel}")
        self._write(LED0_ON_L + 4 * channel + 3, FULL)

    def answers(self) -> bool:
        """True if a device acknowledges at this address (reads MODE1)."""
        try:
            self._bus.read_byte_data(self.address, MODE1)
        except OSError:
            return False
        return True

    def all_off(self) -> None:
        """Every channel fully off at once (servos go limp)."""
        self._write(ALL_LED_OFF_H, FULL)

    def _read(self, register: int) -> int:
        try:
            return int(self._bus.read_byte_data(self.address, register))
        except OSError as exc:
            raise self._error(exc) from None

    def _write(self, register: int, value: int) -> None:
        try:
            self._bus.write_byte_data(self.address, register, value)
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> HardwareError:
        return HardwareError(
            f"{self._where} did not answer ({exc.strerror or exc}): check the servo board's wiring and power "
            f"and `i2cdetect -y {self._bus_number if self._bus_number is not None else 1}`"
        )
