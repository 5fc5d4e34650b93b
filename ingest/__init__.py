"""ingest: load large annotated image datasets into Clarifai, fast and without loss.

::

    import ingest

    report = ingest.run("boxes.csv", pat="...", user_id="me", app_id="my-app")

    async with ingest.Ingester(ingest.Config.from_env()) as ing:
        report = await ing.run("boxes.csv")
        plan = await ing.plan("boxes.csv")                 # before: checks and estimate
        async with ing.verify("boxes.csv") as differences: # after: what the app lacks
            ...
"""

from __future__ import annotations

import logging

from ingest.config import Config
from ingest.errors import (
    AccountError,
    AuthError,
    ClarifaiError,
    ConfigError,
    IngestError,
    InvalidRowsError,
    JournalError,
    MissingColumnError,
    RetriesExhaustedError,
    SourceError,
    TLSError,
    TransportError,
    UnreachableError,
)
from ingest.estimate import Estimate
from ingest.ingester import Differences, Ingester, Outcomes, Source, run
from ingest.model import Box, InvalidRow, Outcome, Row, Status
from ingest.plan import Check, Plan
from ingest.report import Report
from ingest.verify import Difference, DifferenceKind, VerifyReport

__version__ = "0.1.0"

# a library's loggers print nothing until the application configures logging
logging.getLogger("ingest").addHandler(logging.NullHandler())

__all__ = [
    "AccountError",
    "AuthError",
    "Box",
    "Check",
    "ClarifaiError",
    "Config",
    "ConfigError",
    "Difference",
    "DifferenceKind",
    "Differences",
    "Estimate",
    "IngestError",
    "Ingester",
    "InvalidRow",
    "InvalidRowsError",
    "JournalError",
    "MissingColumnError",
    "Outcome",
    "Outcomes",
    "Plan",
    "Report",
    "RetriesExhaustedError",
    "Row",
    "Source",
    "SourceError",
    "Status",
    "TLSError",
    "TransportError",
    "UnreachableError",
    "VerifyReport",
    "__version__",
    "run",
]
