"""Exceptions of the rover package and the exit codes the programs use.

Library code raises these precise exceptions; only a program's top-level loop
turns them into a log line and an exit code. Each class also derives from the
matching built-in (as gpiozero does), so ``except ValueError`` still works.

Exit codes follow BSD ``sysexits.h``: 78 (``EX_CONFIG``) marks a problem that a
restart cannot fix (bad config, missing or non-conforming model), and the
systemd units list it in ``RestartPreventExitStatus=`` so a misconfigured
service does not restart-loop.
"""

from __future__ import annotations

EXIT_OK = 0
#: A runtime failure a restart may cure (camera gone, bus error).
EXIT_FAILURE = 1
#: Command-line usage error (argparse's own code).
EXIT_USAGE = 2
#: Input/output error (``EX_IOERR``): an output could not be written any more
#: (disk full, device gone); what was written before is intact.
EXIT_IOERR = 74
#: Configuration error: bad config file, missing or non-conforming model.
EXIT_CONFIG = 78


class RoverError(Exception):
    """Base class of every error the rover package raises on purpose."""

    exit_code = EXIT_FAILURE


class ConfigError(RoverError, ValueError):
    """The configuration file or a command-line value is invalid."""

    exit_code = EXIT_CONFIG


class ModelError(RoverError, ValueError):
    """A model file is missing, unreadable or breaks the model contract."""

    exit_code = EXIT_CONFIG


class CameraError(RoverError, OSError):
    """A frame source cannot be opened or stopped delivering frames."""

    exit_code = EXIT_FAILURE


class MessageError(RoverError, ValueError):
    """A message on a ZeroMQ stream is malformed or breaks its schema."""


class OutputError(RoverError, OSError):
    """An output file could not be written any more (disk full, device gone, I/O error)."""

    exit_code = EXIT_IOERR


class HardwareError(RoverError, OSError):
    """A hardware backend cannot be opened or refused a command."""

    exit_code = EXIT_FAILURE
