"""The warning filters of every Python process the tests and benchmarks start.

One list, ``filterwarnings`` in pyproject.toml's ``[tool.pytest.ini_options]`` (every
warning an error, with the exceptions named there and why), serves the test process
(pytest reads it) and every Python process the tests and benchmarks start: the command
line, the sandbox, the peers, the clients and Spark's Python workers. They get it as
``-W`` options (:func:`python`) when the command line is ours, or as the environment
variable ``PYTHONWARNINGS`` (:func:`pythonwarnings`) when something else starts them
(Spark's workers) or when a test runs a command its own way.

pytest reads a filter's message and module as regular expressions matched at the start,
``-W`` and ``PYTHONWARNINGS`` as literal text (the message's start; the whole module
name): a filter here must mean the same under both, so it may hold no other regular
expression character than ``.`` (which matches itself too), nor a comma (the separator
of ``PYTHONWARNINGS``). :func:`filters` refuses one that does.
"""

from __future__ import annotations

import re
import sys
import tomllib
from functools import cache
from pathlib import Path

__all__ = ["filters", "python", "pythonwarnings", "warning_options"]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# what a literal -W field cannot hold but a regular expression may (``.`` aside)
_REGEX = re.compile(r"[\\^$*+?{}\[\]|(),]")


@cache
def filters() -> tuple[str, ...]:
    """The test suite's warning filters, in order (later ones win, as under ``-W``)."""
    with PYPROJECT.open("rb") as fh:
        found = tomllib.load(fh)["tool"]["pytest"]["ini_options"]["filterwarnings"]
    out = tuple(str(f) for f in found)
    for f in out:
        parts = f.split(":")
        if len(parts) > 5 or any(_REGEX.search(p) for p in parts[1:2] + parts[3:4]):
            raise ValueError(
                f"{PYPROJECT}: filterwarnings {f!r} means one thing to pytest (regular "
                "expressions) and another to -W (literal text): write its message and "
                "module as plain text"
            )
    return out


def warning_options() -> list[str]:
    """``-W FILTER`` for each filter, as a Python command line takes them."""
    return [option for f in filters() for option in ("-W", f)]


def python(*args: str) -> list[str]:
    """``python -W ... ARGS`` with this interpreter: warnings are errors there too."""
    return [sys.executable, *warning_options(), *args]


def pythonwarnings() -> str:
    """The filters as ``PYTHONWARNINGS``, for processes started by something else."""
    return ",".join(filters())
