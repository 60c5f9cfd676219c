"""A fake ``smbus2`` whose bus 1 holds a PCA9685 register model at 0x40.

:class:`SMBus` has smbus2's signature and byte/block methods and raises what
the kernel driver raises: ``FileNotFoundError`` for a missing
``/dev/i2c-N``, ``OSError`` errno 121 (Remote I/O error) for an address with
no device. It is stricter in one place: a value outside 0..255 raises
ValueError (smbus2 would truncate it silently, which is always a bug).

:class:`PCA9685Model` behaves like the chip where it matters to a driver:
power-on values (MODE1 0x11 asleep, PRE_SCALE 30, every channel full-off),
PRE_SCALE writes ignored unless SLEEP is set, the RESTART flag, register
auto-increment only with MODE1.AI (without it a block write lands in one
register), ALL_LED_* writes loading every channel (in the replayed history
too), a block write applied as one transaction (no reader sees half of it,
as the chip updates its outputs at the STOP), and "writes within
500 us of waking" noted as violations of the datasheet. Outputs are decoded
as pulse widths in ticks; a sleeping chip drives no pulses.

The state lives in an :class:`I2CWorld`: in memory, or in the file named by
``ROVER_FAKEHW_STATE`` so a later process sees the registers an earlier one
left, as the real chip keeps them.
"""

from __future__ import annotations

import errno
import itertools
import os
import time
from typing import Any, Callable, Iterable

try:
    from .fakehw_state import Store, default_path
except ImportError:
    from fakehw_state import Store, default_path  # type: ignore[no-redef]

MODE1, MODE2, LED0_ON_L, ALL_LED_ON_L, PRE_SCALE, TEST_MODE = 0x00, 0x01, 0x06, 0xFA, 0xFE, 0xFF
RESTART, AI, SLEEP = 0x80, 0x20, 0x10
OSCILLATOR_SETTLE_S = 500e-6


def _power_on() -> list[int]:
    regs = [0] * 256
    regs[MODE1], regs[MODE2] = 0x11, 0x04
    regs[0x02], regs[0x03], regs[0x04], regs[0x05] = 0xE2, 0xE4, 0xE8, 0xE0
    for channel in range(16):
        regs[LED0_ON_L + 4 * channel + 3] = 0x10  # LEDn_OFF_H: full off
    regs[PRE_SCALE] = 0x1E
    return regs


class PCA9685Model:
    """The chip's registers, as a view on one device entry of the world's state."""

    def __init__(self, world: "I2CWorld", bus: int, address: int) -> None:
        self.world, self.bus, self.address = world, bus, address

    # -- inspection -------------------------------------------------------------------
    def registers(self) -> list[int]:
        return list(self._device(self.world.store.snapshot())["regs"])

    @property
    def sleeping(self) -> bool:
        return bool(self.registers()[MODE1] & SLEEP)

    @property
    def prescale(self) -> int:
        return self.registers()[PRE_SCALE]

    @property
    def frequency_hz(self) -> float:
        return 25_000_000 / (4096 * (self.prescale + 1))

    def pulse_ticks(self, channel: int) -> int:
        """High time per period in ticks: 0 (off, or chip asleep) .. 4096 (full on)."""
        return decode_pulse(self.registers(), channel)

    def violations(self) -> list[str]:
        return list(self._device(self.world.store.snapshot())["violations"])

    def writes(self) -> list[dict]:
        """Every register write ``{"t", "reg", "value", "applied"}``, oldest first."""
        return [e for e in self.world.store.history()
                if e["bus"] == self.bus and e["addr"] == self.address and e["kind"] == "write"]

    def channel_history(self, channel: int) -> list[int]:
        """The decoded pulse of ``channel`` after each write that touched it, oldest first."""
        regs = _power_on()
        seen: list[int] = []
        base = LED0_ON_L + 4 * channel
        for event in self.writes():
            if event["applied"]:
                _replay(regs, event["reg"], event["value"])
                if base <= event["reg"] < base + 4 or event["reg"] == MODE1 or 0xFA <= event["reg"] <= 0xFD:
                    seen.append(decode_pulse(regs, channel))
        return seen

    # -- the chip's behaviour ---------------------------------------------------------
    def _device(self, state: dict) -> dict:
        return state["buses"][str(self.bus)][str(self.address)]

    def read(self, register: int) -> int:
        with self.world.store.transaction() as state:
            regs = self._device(state)["regs"]
            return 0 if 0xFA <= register <= 0xFD else regs[register]  # ALL_LED_* read back as 0

    def write(self, register: int, value: int, txn: int | None = None) -> None:
        """One register write; ``txn`` numbers the bus transaction it belonged to (one per SMBus call)."""
        self.write_block(register, [value], txn)

    def write_block(self, register: int, values: list[int], txn: int | None = None) -> None:
        """The bytes of one bus transaction, applied together: no reader sees half of it (the chip
        updates its outputs at the STOP); each byte goes to the next register only with MODE1.AI."""
        t = self.world.clock()
        txn = txn if txn is not None else next(_transactions)
        events = []
        with self.world.store.transaction() as state:
            device = self._device(state)
            for value in values:
                applied = self._apply(device, register, value, t)
                events.append({"t": t, "kind": "write", "bus": self.bus, "addr": self.address,
                               "reg": register, "value": value, "applied": applied, "txn": txn})
                if device["regs"][MODE1] & AI:
                    register = 0x00 if register == 0x45 else (register + 1) & 0xFF
        for event in events:
            self.world.store.record(event)

    def transactions(self) -> list[list[dict]]:
        """The register writes grouped by bus transaction, oldest first (the chip updates outputs at each STOP)."""
        groups: dict[Any, list[dict]] = {}
        for event in self.writes():
            groups.setdefault((event["pid"], event["txn"]), []).append(event)
        return list(groups.values())

    def pulses_after_each_transaction(self, channels: Iterable[int]) -> list[tuple[int, ...]]:
        """What ``channels`` drove after every transaction: what a scope on the outputs would show."""
        regs = _power_on()
        channels = list(channels)
        seen = []
        for group in self.transactions():
            for event in group:
                if event["applied"]:
                    _replay(regs, event["reg"], event["value"])
            seen.append(tuple(decode_pulse(regs, ch) for ch in channels))
        return seen

    def _apply(self, device: dict, register: int, value: int, t: float) -> bool:
        regs = device["regs"]
        if register == MODE1:
            old = regs[MODE1]
            restart = bool(old & RESTART)
            if old & SLEEP and not value & SLEEP:
                device["awake_since"] = t
            if value & SLEEP and not old & SLEEP:
                device["awake_since"] = None
                if any(decode_pulse(regs, ch, ignore_sleep=True) for ch in range(16)):
                    restart = True  # the chip flags that PWM channels were running
            if value & RESTART and restart:
                self._check_settled(device, t, "RESTART")
                restart = False  # writing 1 restarts the channels and clears the flag
            regs[MODE1] = (value & 0x7F) | (RESTART if restart else 0) | (old & 0x40)  # EXTCLK is sticky
            return True
        if register == PRE_SCALE:
            if not regs[MODE1] & SLEEP:
                return False  # the chip ignores PRE_SCALE while its oscillator runs
            regs[PRE_SCALE] = max(3, value)
            return True
        if register == TEST_MODE:
            device["violations"].append("wrote the reserved TEST_MODE register 0xFF")
            return False
        if 0xFA <= register <= 0xFD:
            self._check_settled(device, t, f"ALL_LED register {register:#x}")
            for channel in range(16):
                regs[LED0_ON_L + 4 * channel + register - 0xFA] = value
            return True
        if LED0_ON_L <= register < LED0_ON_L + 64:
            self._check_settled(device, t, f"LED register {register:#x}")
        regs[register] = value
        return True

    def _check_settled(self, device: dict, t: float, what: str) -> None:
        since = device.get("awake_since")
        if since is not None and t - since < OSCILLATOR_SETTLE_S:
            device["violations"].append(f"{what} written {(t - since) * 1e6:.0f} us after wake-up (needs 500 us)")

    def next_register(self, register: int) -> int:
        """Where the next byte of a block write goes: auto-increment only with MODE1.AI."""
        with self.world.store.transaction() as state:
            ai = self._device(state)["regs"][MODE1] & AI
        if not ai:
            return register
        return 0x00 if register == 0x45 else (register + 1) & 0xFF


def _replay(regs: list[int], register: int, value: int) -> None:
    """Apply one recorded (applied) write to a register copy: an ALL_LED_* write loads every channel."""
    if 0xFA <= register <= 0xFD:
        for channel in range(16):
            regs[LED0_ON_L + 4 * channel + register - 0xFA] = value
    else:
        regs[register] = value


def decode_pulse(regs: list[int], channel: int, *, ignore_sleep: bool = False) -> int:
    """Pulse width in ticks for ``channel`` from the register values."""
    if regs[MODE1] & SLEEP and not ignore_sleep:
        return 0
    base = LED0_ON_L + 4 * channel
    on_l, on_h, off_l, off_h = regs[base:base + 4]
    if off_h & 0x10:
        return 0
    if on_h & 0x10:
        return 4096
    on, off = on_l | (on_h & 0x0F) << 8, off_l | (off_h & 0x0F) << 8
    return (off - on) % 4096


class I2CWorld:
    """The I2C buses and their devices: ``{bus: [addresses of PCA9685s]}``."""

    def __init__(self, state_path: str | os.PathLike[str] | None = None, *,
                 clock: Callable[[], float] = time.monotonic, devices: dict[int, list[int]] | None = None) -> None:
        self.clock = clock
        layout = devices if devices is not None else {1: [0x40]}

        def initial() -> dict:
            return {"buses": {str(bus): {str(addr): {"regs": _power_on(), "awake_since": None, "violations": []}
                                         for addr in addrs} for bus, addrs in layout.items()}}

        self.store = Store(state_path, "i2c", initial)

    def has_bus(self, bus: int) -> bool:
        return str(bus) in self.store.snapshot()["buses"]

    def device(self, bus: int, address: int) -> PCA9685Model | None:
        state = self.store.snapshot()
        if str(address) not in state["buses"].get(str(bus), {}):
            return None
        return PCA9685Model(self, bus, address)

    def chip(self, bus: int = 1, address: int = 0x40) -> PCA9685Model:
        device = self.device(bus, address)
        assert device is not None, f"no fake device at {address:#x} on bus {bus}"
        return device


_default_world: I2CWorld | None = None
_transactions = itertools.count(1)


def _world() -> I2CWorld:
    global _default_world
    if _default_world is None:
        # ROVER_FAKEHW_I2C="0x5f" puts the 2024 kit's chip on bus 1 instead of the 2019-23 kit's 0x40.
        wanted = os.environ.get("ROVER_FAKEHW_I2C")
        devices = {1: [int(a, 16) for a in wanted.split(",") if a]} if wanted is not None else None
        _default_world = I2CWorld(default_path(), devices=devices)
    return _default_world


class SMBus:
    """``smbus2.SMBus(bus=None, force=False)``; ``world`` (fake only) picks the simulated hardware."""

    def __init__(self, bus: int | None = None, force: bool = False, *, world: I2CWorld | None = None) -> None:
        self._world = world if world is not None else _world()
        self.bus: int | None = None
        self.force = force
        self.fd: int | None = None
        if bus is not None:
            self.open(bus)

    def open(self, bus: int) -> None:
        if not isinstance(bus, int) or not self._world.has_bus(bus):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"/dev/i2c-{bus}")
        self.bus, self.fd = bus, 3

    def close(self) -> None:
        self.fd = None

    def __enter__(self) -> "SMBus":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _chip(self, i2c_addr: int) -> PCA9685Model:
        if self.fd is None or self.bus is None:
            raise OSError(errno.EBADF, "Bad file descriptor")
        device = self._world.device(self.bus, i2c_addr)
        if device is None:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return device

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._chip(i2c_addr).read(_byte("register", register))

    def write_byte_data(self, i2c_addr: int, register: int, value: int, force: bool | None = None) -> None:
        self._chip(i2c_addr).write(_byte("register", register), _byte("value", value), next(_transactions))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force: bool | None = None) -> list[int]:
        if length > 32:
            raise ValueError("Desired block length over 32 bytes")
        chip, reg, out = self._chip(i2c_addr), _byte("register", register), []
        for _ in range(length):
            out.append(chip.read(reg))
            reg = chip.next_register(reg)
        return out

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Iterable[int],
                             force: bool | None = None) -> None:
        data = list(data)
        if len(data) > 32:
            raise ValueError("Data length cannot exceed 32 bytes")
        chip, reg = self._chip(i2c_addr), _byte("register", register)
        chip.write_block(reg, [_byte("value", value) for value in data], next(_transactions))


def _byte(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"fake smbus2: {name} must be a byte 0..255, not {value!r}")
    return value
