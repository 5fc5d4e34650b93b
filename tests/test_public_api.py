"""The public surface: one sorted ``__all__``, every error under ``IngestError``."""

from __future__ import annotations

import ingest
from ingest.ingester import Outcomes
from tests.helpers import REPORT_KEYS

# The names, by kind; ``__all__`` holds them sorted.
# fmt: off
PUBLIC = [
    "Config", "Ingester", "run", "__version__",
    "Box", "InvalidRow", "Outcome", "Outcomes", "Report", "Row", "Source", "Status",
    "Differences", "Difference", "DifferenceKind", "VerifyReport", "Plan", "Check", "Estimate",
    "AccountError", "AuthError", "ClarifaiError", "ConfigError", "IngestError", "InvalidRowsError",
    "JournalError", "MissingColumnError", "RetriesExhaustedError", "SourceError", "TLSError",
    "TransportError", "UnreachableError",
]
# fmt: on


def test_all_names_exactly_the_public_api() -> None:
    assert ingest.__all__ == sorted(PUBLIC)
    assert ingest.Outcomes is Outcomes  # what Ingester.stream yields


def test_all_is_sorted_and_importable() -> None:
    assert ingest.__all__ == sorted(ingest.__all__)
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None


def test_every_exported_error_is_an_ingest_error() -> None:
    errors = [getattr(ingest, n) for n in ingest.__all__ if n.endswith("Error")]
    assert {e.__name__ for e in errors} >= {"AccountError", "TLSError", "SourceError"}
    for error in errors:
        assert issubclass(error, ingest.IngestError), error


def test_the_json_report_holds_the_keys_docs_contracts_promises() -> None:
    assert set(REPORT_KEYS) <= set(ingest.Report().to_dict())
