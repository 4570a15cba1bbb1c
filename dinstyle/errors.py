"""Error types. Library code raises these; only the CLI turns them into exit codes."""
from __future__ import annotations

EXIT_FAILED = 1  # a batch finished but some inputs failed
EXIT_USAGE = 2  # bad input: nothing (or nothing more) was written
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (timeout, systemd, docker stop, batch schedulers): 128 + 15


class DinstyleError(Exception):
    """Base error: its message is one line meant for the user."""

    exit_code = EXIT_USAGE


class InputError(DinstyleError):
    """An input file (image, style, mask) is missing, unreadable or invalid."""


class OutputError(DinstyleError):
    """An output cannot be written where asked."""


class CheckpointError(DinstyleError):
    """Weights, checkpoints or style packs are missing, corrupt or incompatible."""


class OptionError(DinstyleError):
    """An option value is invalid."""


class ResourceError(DinstyleError):
    """The job needs more memory than this machine (or its limits) can give."""
