"""The ``ingest`` command line: upload, validate, verify, plan, sandbox, demo.

Exit status (docs/contracts.md): 0 when every row landed or was already there;
1 when some rows failed or were invalid (every one of them is in the failures
file); 2 for a usage, credential, TLS or file-level error, or when the account stops
the upload (AccountError: input quota, hourly limit, plan, app deleted; the journal
keeps what landed) - one sentence on stderr, no traceback; 130 when interrupted
(Ctrl-C or SIGTERM; the journal keeps what landed, so running the same command again
continues).

``verify`` exits 0 when the app holds everything the data says, 1 when something differs,
2 as ``upload``; ``plan`` 0 when an upload could start, 2 with the reasons.

One module a command (:mod:`.upload`, :mod:`.validate`, :mod:`.verify`, :mod:`.plan`,
:mod:`.demo`, :mod:`.sandbox`),
the parser and ``main`` in :mod:`.main`, the dataset-reading options in :mod:`.formats`,
the live display in :mod:`.progress`, the closing table and JSON report in
:mod:`.summary`, signal handling in :mod:`.signals`, what they share (exit codes, the
error line, secrets kept out of output, the table of ``Config`` fields and options) in
:mod:`.common`. The library installs no signal handler; the command
line does, around an upload only.
"""

from __future__ import annotations

from .main import build_parser, main
from .summary import UploadResult, print_summary
from .upload import UploadPlan, run_upload

__all__ = ["UploadPlan", "UploadResult", "build_parser", "main", "print_summary", "run_upload"]
