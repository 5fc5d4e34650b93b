"""``python -m benchmarks [--quick]``: the benchmark suite (see :mod:`benchmarks.suite`)."""

from __future__ import annotations

from benchmarks.suite import main

if __name__ == "__main__":
    raise SystemExit(main())
