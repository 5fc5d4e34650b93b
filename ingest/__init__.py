"""ingest: load large annotated image datasets into Clarifai, fast and without loss."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
