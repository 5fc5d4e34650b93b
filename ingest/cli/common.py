"""What every command shares: exit codes, the error line, secrets kept out of output."""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


SECRETS: set[str] = set()


def scrub(text: str) -> str:
    """Never let a token through, whatever an error message holds."""
    for secret in SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return text


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


_CONFIG_FIELD = re.compile(r"\bConfig\.([a-z_]+)")


def as_flags(message: str) -> str:
    """The library's ``Config.<field>`` names as this command's flags (``--<field>``)."""
    return _CONFIG_FIELD.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)


def print_error(message: str) -> None:
    err_console().print(
        Text("ingest: error: ", style="bold red") + Text(scrub(as_flags(message))),
        soft_wrap=True,
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value
