"""systemd's service notification protocol (``sd_notify``), without libsystemd.

Under a ``Type=notify`` unit systemd sets ``NOTIFY_SOCKET``; a datagram of
``KEY=VALUE`` lines sent there reports readiness (``READY=1``), liveness
(``WATCHDOG=1``, needed at least every ``WATCHDOG_USEC``), a status line
(``STATUS=...``) and shutdown (``STOPPING=1``). Outside systemd every call is a
no-op, so the programs run the same from a terminal.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping


class Notifier:
    """Sends notifications to systemd, or does nothing when not under systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address.startswith("@"):
            self._address = "\0" + address[1:]  # abstract namespace socket
        elif address.startswith("/"):
            self._address = address
        self._socket: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_for_us = not pid or pid == str(os.getpid())
        #: Seconds between two WATCHDOG=1 pings (half systemd's limit), or None.
        self.watchdog_interval: float | None = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and watchdog_for_us else None
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (keys upper-cased); True if sent."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                # Non-blocking: a busy or stuck receiver must never stall the main loop
                # (a full datagram queue drops the notification instead).
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._socket.sendto(payload, self._address)
        except OSError:
            return False  # systemd went away; nothing useful to do about it
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
