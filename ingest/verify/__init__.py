"""``ingest verify``'s library side: compare a dataset with what the app holds, read-only.

:func:`check_rows` reads the rows grouped by image (:mod:`.check`), reads each batch's
inputs and annotations from the app and compares them (:mod:`.compare`); what it finds are
:class:`Difference` s, counted into a :class:`VerifyReport` (:mod:`.differences`).
``Ingester.verify`` is the way in.
"""

from __future__ import annotations

from ingest.verify.check import check_rows, read_inputs
from ingest.verify.compare import compare
from ingest.verify.differences import Difference, DifferenceKind, VerifyReport

__all__ = ["Difference", "DifferenceKind", "VerifyReport", "check_rows", "compare", "read_inputs"]
