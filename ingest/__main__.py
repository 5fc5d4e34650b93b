"""``python -m ingest``: the same as the ``ingest`` command."""

from ingest.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
