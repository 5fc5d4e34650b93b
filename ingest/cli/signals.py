"""Ctrl-C and SIGTERM during an upload: a second one aborts at once."""

from __future__ import annotations

import os
import signal
import sys

from ingest.cli.common import EXIT_INTERRUPTED


def arm_hard_exit() -> None:
    """From now on SIGINT or SIGTERM ends the process at once, whatever it is doing."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _hard_exit)


def _hard_exit(signum: int, frame: object) -> None:
    abort()


def abort() -> None:
    """Second Ctrl-C: leave at once; the journal holds everything up to its last write."""
    if sys.stderr.isatty():
        sys.stderr.write("\x1b[?25h\n")  # the live display hid the cursor
    sys.stderr.write("aborted at once; the journal holds what landed up to its last write\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)
