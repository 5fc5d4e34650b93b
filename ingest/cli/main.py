"""The parser and ``main``: which command runs, and the exit status of errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from ingest.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    positive_float,
    positive_int,
    print_error,
    scrub,
)
from ingest.cli.demo import cmd_demo
from ingest.cli.formats import add_format_arguments
from ingest.cli.sandbox import cmd_sandbox
from ingest.cli.upload import cmd_upload
from ingest.cli.validate import cmd_validate
from ingest.errors import IngestError, first_error

UPLOAD_EPILOG = """\
examples:
  # a personal access token and the app, from the SDK's environment variables
  export CLARIFAI_PAT=...  CLARIFAI_USER_ID=me  CLARIFAI_APP_ID=my-app
  ingest upload boxes.csv

  # an app-scoped API key, into a dataset, with the JSON report
  ingest upload boxes.csv --api-key "$KEY" --dataset-id train --report-json report.json

  # after a crash, a kill or Ctrl-C: the same command continues where it stopped
  ingest upload boxes.csv

  # send again the rows that failed (broken URLs, invalid rows once fixed)
  ingest upload boxes.failures.csv

  # a dry run against the local sandbox (python -m ingest sandbox in another shell)
  ingest upload boxes.csv --base http://127.0.0.1:18080 \\
      --pat sandbox-pat --user-id sandbox --app-id sandbox-app

files:
  DATA.csv.ingest-state  the resume journal (--state): line numbers of rows that
                         landed. It is kept after a complete run, so running the
                         same command again sends nothing; --restart ignores it.
                         It refuses to resume when DATA.csv changed since.
  DATA.failures.csv      every failed or invalid row (--failures), in the input's
                         columns plus 'line' and 'error'; upload it to retry them.
                         Written only when something failed.

exit status:
  0   every row landed or was already there
  1   some rows failed or were invalid; all of them are in the failures file
  2   usage, credential, TLS or file-level error, or the account stopped the
      upload (input quota, hourly limit, plan, app deleted); nothing more was sent
  130 interrupted; run the same command again to continue
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Upload annotated images (a CSV of URLs and boxes) into Clarifai, "
        "fast, resumably, without duplicates.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'ingest COMMAND --help' for a command's options; "
        "'make demo' shows an upload against the local sandbox",
    )
    from ingest import __version__

    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "upload",
        help="upload a CSV of images and boxes",
        description="Upload every row of DATA.csv: one input per image URL, one annotation "
        "per box. Credentials and address also come from CLARIFAI_PAT, CLARIFAI_USER_ID, "
        "CLARIFAI_APP_ID, CLARIFAI_API_KEY and CLARIFAI_API_BASE.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=UPLOAD_EPILOG,
    )
    up.add_argument(
        "data",
        metavar="DATA",
        help="the CSV, COCO JSON file, YOLO dataset (data.yaml or folder) or VOC folder",
    )
    add_format_arguments(up)
    cred = up.add_mutually_exclusive_group()
    cred.add_argument(
        "--pat", metavar="TOKEN", help="personal access token (env CLARIFAI_PAT; safer than here)"
    )
    cred.add_argument("--api-key", metavar="KEY", help="app-scoped API key (env CLARIFAI_API_KEY)")
    up.add_argument("--user-id", metavar="U", help="app owner, with --pat (env CLARIFAI_USER_ID)")
    up.add_argument("--app-id", metavar="A", help="the app, with --pat (env CLARIFAI_APP_ID)")
    up.add_argument(
        "--base",
        metavar="URL",
        help="https://host[:port] (TLS, default https://api.clarifai.com) or http://host:port "
        "(plaintext, e.g. the sandbox) (env CLARIFAI_API_BASE)",
    )
    up.add_argument(
        "--ca-file",
        metavar="PATH",
        help="trust the certificate authorities in this PEM file for TLS, e.g. the one "
        "'ingest sandbox --tls' prints (gRPC's GRPC_DEFAULT_SSL_ROOTS_FILE_PATH also works)",
    )
    up.add_argument("--dataset-id", metavar="D", help="also add every input to this dataset")
    up.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="inputs per PostInputs and annotations per PostAnnotations (max 128, default 128)",
    )
    up.add_argument(
        "--concurrency", type=positive_int, metavar="N", help="calls in flight per stage (4)"
    )
    up.add_argument(
        "--rps",
        type=positive_float,
        metavar="R",
        help="request budget per second for all calls (default 15, Clarifai's limit per key)",
    )
    up.add_argument(
        "--processing-timeout",
        type=positive_float,
        metavar="S",
        help="give up on an input Clarifai has not processed after S seconds (default 600)",
    )
    up.add_argument(
        "--call-timeout",
        type=positive_float,
        metavar="S",
        help="deadline of each call; a call past it is retried (default 60)",
    )
    up.add_argument(
        "--tmp-dir",
        metavar="DIR",
        help="where a file whose rows of one image are scattered is grouped by image first "
        "(temp files of about the file's size, removed at the end; default: the system's "
        "temp folder)",
    )
    up.add_argument(
        "--state", metavar="PATH", help="resume journal (default DATA.csv.ingest-state)"
    )
    up.add_argument("--failures", metavar="PATH", help="failures file (default DATA.failures.csv)")
    up.add_argument("--report-json", metavar="PATH", help="write the JSON report here")
    up.add_argument(
        "--no-progress", action="store_true", help="no live display and no progress lines"
    )
    up.add_argument(
        "--restart",
        action="store_true",
        help="ignore the resume journal and consider every row again",
    )
    up.add_argument(
        "--strict", action="store_true", help="send nothing if any row is invalid (reads twice)"
    )
    up.set_defaults(func=cmd_upload)

    val = sub.add_parser(
        "validate",
        help="check a CSV without sending anything",
        description="Read and check the whole of DATA.csv; nothing is sent. Lists every "
        "invalid row (line, column, reason) and what the file holds. Exit 1 if any row "
        "is invalid, 2 if the file cannot be used at all.",
    )
    val.add_argument("data", metavar="DATA")
    add_format_arguments(val)
    val.add_argument(
        "--write-csv",
        metavar="OUT",
        help="also write the rows ingest would send as a CSV in its own format (what a COCO, "
        "YOLO or VOC dataset becomes), to look at, diff or edit; 'ingest upload OUT' stores "
        "the same as uploading DATA",
    )
    val.set_defaults(func=cmd_validate)

    sub.add_parser(
        "sandbox",
        help="run a local Clarifai-compatible server (see 'ingest sandbox --help')",
        add_help=False,
    )

    demo = sub.add_parser(
        "demo",
        help="upload the example data to an in-process sandbox with the live display",
        description="Start a sandbox with realistic limits, upload examples/boxes.csv with "
        "the live display, and show what the sandbox holds. State files go to a fresh "
        "temporary folder, so the demo can be run again.",
    )
    demo.add_argument("--no-progress", action="store_true", help="no live display")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ingest`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["sandbox"]:
            return cmd_sandbox(args[1:])
        parser = build_parser()
        ns = parser.parse_args(args)
        func: Callable[[argparse.Namespace], int] | None = getattr(ns, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return func(ns)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except IngestError as exc:
        print_error(str(exc))
        return EXIT_USAGE
    except BaseExceptionGroup as group:
        leaf = first_error(group)
        if isinstance(leaf, IngestError):
            print_error(str(leaf))
            return EXIT_USAGE
        print_error(f"unexpected {type(leaf).__name__}: {leaf}")
        return EXIT_USAGE
    except Exception as exc:  # a bug: say what, never the token
        if os.environ.get("INGEST_DEBUG"):
            import traceback

            sys.stderr.write(scrub(traceback.format_exc()))
        print_error(f"unexpected {type(exc).__name__}: {exc} (set INGEST_DEBUG=1 for a traceback)")
        return EXIT_USAGE
