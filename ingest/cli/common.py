"""What every command shares: exit codes, the error line, secrets kept out of output,
and the one table between the library's ``Config`` fields and the upload's options."""

from __future__ import annotations

import argparse
import re

from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


#: ``Config`` fields and the ``ingest upload`` options that set them. The options are
#: read into a ``Config`` through it, and the library's messages, which name options as
#: ``Config.<field>``, are rewritten through it for the command line.
CONFIG_OPTIONS: dict[str, str] = {
    "pat": "--pat",
    "api_key": "--api-key",
    "base": "--base",
    "ca_file": "--ca-file",
    "user_id": "--user-id",
    "app_id": "--app-id",
    "dataset_id": "--dataset-id",
    "batch_size": "--batch-size",
    "annotation_batch_size": "--batch-size",
    "concurrency": "--concurrency",
    "rps": "--rps",
    "processing_timeout": "--processing-timeout",
    "call_timeout": "--call-timeout",
    "strict": "--strict",
    "tmp_dir": "--tmp-dir",
}

#: The secrets among them, and the environment variable that can hold each instead.
SECRET_VARIABLES: dict[str, str] = {"pat": "CLARIFAI_PAT", "api_key": "CLARIFAI_API_KEY"}

_CONFIG_TERM = re.compile(r"\bConfig\.([A-Za-z_]\w*)")


def option_terms(message: str) -> str:
    """``message`` with each ``Config.<field>`` that has an option written as the option."""
    return _CONFIG_TERM.sub(lambda m: CONFIG_OPTIONS.get(m.group(1), m.group(0)), message)


SECRETS: set[str] = set()


def scrub(text: str) -> str:
    """``text`` with every secret in :data:`SECRETS` replaced by ``***``.

    A secret is masked where it stands alone, not where its letters are part of a longer
    word: a token ``x`` masks ``x`` and ``Key x`` but leaves "plaintext" alone (a real
    token is 32 or more characters, never part of a word).
    """
    for secret in SECRETS:
        if secret:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    err_console().print(
        Text("ingest: error: ", style="bold red") + Text(scrub(option_terms(message))),
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
