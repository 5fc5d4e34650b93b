"""``python -m ingest.sandbox``."""

from ingest.sandbox.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
