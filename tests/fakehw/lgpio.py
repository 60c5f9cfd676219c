"""A fake ``lgpio`` module: only what rpi-lgpio's callers ever see of it, its ``error``.

lgpio (joan2937/lg, PY_LGPIO/lgpio_extra.py) raises ``lgpio.error(error_text(code))``
from every call that fails while ``lgpio.exceptions`` is true (the default),
and ``str()`` of it is the repr of the text: ``'GPIO busy'`` with the quotes.
"""

from __future__ import annotations

exceptions = True
GPIO_BUSY = -79
GPIO_NOT_ALLOCATED = -80


class error(Exception):  # noqa: N801 - the real module's name
    """lgpio module exception."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return repr(self.value)


def error_text(code: int) -> str:
    return {GPIO_BUSY: "GPIO busy", GPIO_NOT_ALLOCATED: "GPIO not allocated"}.get(code, f"error {code}")
