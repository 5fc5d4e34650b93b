"""The ``ingest`` command line (upload, validate, sandbox, demo)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ingest")
    parser.parse_args(argv)
    return 0
