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
from ingest.cli.plan import cmd_plan
from ingest.cli.sandbox import cmd_sandbox
from ingest.cli.upload import cmd_upload
from ingest.cli.validate import cmd_validate
from ingest.cli.verify import VERIFY_EPILOG, cmd_verify
from ingest.errors import IngestError, first_error

UPLOAD_EPILOG = """\
examples:
  # a personal access token and the app from the SDK's variables, into a dataset
  export CLARIFAI_PAT=... CLARIFAI_USER_ID=me CLARIFAI_APP_ID=my-app
  ingest upload boxes.csv --dataset-id train --report-json report.json

  # a dry run against the local sandbox ('ingest sandbox' in another shell)
  CLARIFAI_PAT=sandbox-pat ingest upload examples/boxes.csv \\
      --base http://127.0.0.1:18080 --user-id sandbox --app-id sandbox-app

  # after a crash, a kill or Ctrl-C, the same command continues where it stopped;
  # the rows that failed are in DATA.failures.csv, itself a file to upload
  ingest upload boxes.failures.csv

exit status: 0 every row landed or was already there; 1 some rows failed (all in the
failures file); 2 usage, credential, TLS or file error, or the account stopped the
upload; 130 interrupted (the same command continues)
"""


def _add_data_arguments(
    parser: argparse.ArgumentParser, *, strict: str, strict_dest: str = "strict"
) -> None:
    """DATA, its format options, ``--strict`` (saying ``strict``, into ``strict_dest``)
    and ``--tmp-dir``."""
    data = parser.add_argument_group("the data and its format")
    data.add_argument(
        "data",
        metavar="DATA",
        help="a CSV, a COCO JSON file, a YOLO dataset (data.yaml or folder) or a VOC folder",
    )
    add_format_arguments(data)
    data.add_argument("--strict", action="store_true", default=None, dest=strict_dest, help=strict)
    data.add_argument(
        "--tmp-dir",
        metavar="DIR",
        help="where scattered rows of one image are grouped first (temp files of about "
        "DATA's size, removed at the end; default: the system's temp folder)",
    )


def _add_connection_arguments(
    parser: argparse.ArgumentParser, *, dataset: str
) -> argparse._ArgumentGroup:
    """The credentials, the app, ``--dataset-id`` (saying ``dataset``), the address."""
    conn = parser.add_argument_group(
        "credentials and connection",
        "Also from CLARIFAI_PAT, CLARIFAI_API_KEY, CLARIFAI_USER_ID, CLARIFAI_APP_ID,\n"
        "CLARIFAI_API_BASE (for a token, safer than an option, which others may see).",
    )
    cred = conn.add_mutually_exclusive_group()
    cred.add_argument(
        "--pat", metavar="TOKEN", help="personal access token (with --user-id, --app-id)"
    )
    cred.add_argument("--api-key", metavar="KEY", help="app-scoped API key")
    conn.add_argument("--user-id", metavar="U", help="the app's owner")
    conn.add_argument("--app-id", metavar="A", help="the app")
    conn.add_argument("--dataset-id", metavar="D", help=dataset)
    conn.add_argument(
        "--base",
        metavar="URL",
        help="https://host[:port] (TLS; default https://api.clarifai.com) or http://host:port "
        "(plaintext, such as the sandbox)",
    )
    conn.add_argument(
        "--ca-file",
        metavar="PATH",
        help="trust the certificate authorities of this PEM file for TLS (such as the one "
        "'ingest sandbox --tls' prints)",
    )
    return conn


def _add_pace_arguments(parser: argparse.ArgumentParser, *, upload: bool) -> None:
    """The request budget and the calls' shape (``upload``: the processing timeout too)."""
    pace = parser.add_argument_group("throughput")
    pace.add_argument(
        "--rps",
        type=positive_float,
        metavar="R",
        help="requests per second for all calls together (default 15, Clarifai's limit per key)",
    )
    pace.add_argument(
        "--concurrency", type=positive_int, metavar="N", help="calls in flight per stage (4)"
    )
    pace.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="inputs per PostInputs and annotations per PostAnnotations (max and default 128)"
        if upload
        else "images per ListInputs (max and default 128)",
    )
    if upload:
        pace.add_argument(
            "--processing-timeout",
            type=positive_float,
            metavar="S",
            help="fail an input Clarifai has not processed after S seconds (default 600)",
        )
    pace.add_argument(
        "--call-timeout",
        type=positive_float,
        metavar="S",
        help="deadline of each call; a call past it is retried (default 60)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    out = parser.add_argument_group("output")
    out.add_argument("--report-json", metavar="PATH", help="write the report here as JSON")
    out.add_argument(
        "--no-progress",
        action="store_true",
        help="no live display (nor, when stderr is not a terminal, its line every 5 s)",
    )
    return out


def _add_upload_arguments(up: argparse.ArgumentParser) -> None:
    _add_data_arguments(up, strict="send nothing if any row is invalid (reads DATA twice)")
    conn = _add_connection_arguments(
        up, dataset="also add every input to this dataset (inputs the app holds already too)"
    )
    conn.add_argument(
        "--dataset-version",
        action="store_true",
        help="once every row landed (exit 0), make a version of the dataset the rows went "
        "into (--dataset-id, and those the data names) and print its id",
    )
    _add_pace_arguments(up, upload=True)

    kept = up.add_argument_group("journal and failures")
    kept.add_argument(
        "--state",
        metavar="PATH",
        help="the resume journal: the rows that landed (default DATA.ingest-state; kept, "
        "so the same command again sends nothing)",
    )
    kept.add_argument(
        "--restart", action="store_true", help="ignore the journal and consider every row again"
    )
    kept.add_argument(
        "--failures",
        metavar="PATH",
        help="every failed or invalid row, plus 'line' and 'error': a file to upload again "
        "(default DATA.failures.csv)",
    )
    _add_output_arguments(up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Upload annotated images (a CSV, COCO, YOLO, Pascal VOC, LabelMe, CVAT, "
        "class folders, the official SDK's CSV) into Clarifai, fast, resumably, without "
        "duplicates.",
        epilog="run 'ingest COMMAND --help' for a command's options; "
        "'ingest demo' shows an upload against an in-process sandbox",
    )
    from ingest import __version__

    parser.add_argument("--version", action="version", version=f"ingest {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser(
        "upload",
        help="upload a dataset: one input per image, one annotation per region",
        description="Upload every row of DATA: one input per image, one annotation per box "
        "or polygon.",
        usage="ingest upload DATA [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=UPLOAD_EPILOG,
    )
    _add_upload_arguments(up)
    up.set_defaults(func=cmd_upload)

    val = sub.add_parser(
        "validate",
        help="check a dataset without sending anything",
        description="Read and check the whole of DATA; nothing is sent. Lists every "
        "invalid row (line, column, reason) and what the data holds. Exit 1 if any row "
        "is invalid, 2 if the data cannot be used at all.",
    )
    val.add_argument("data", metavar="DATA")
    add_format_arguments(val)
    val.add_argument(
        "--write-csv",
        metavar="OUT",
        help="also write the rows ingest would send as a CSV in its own format (what a COCO, "
        "YOLO, VOC, LabelMe or CVAT dataset becomes), to look at, diff or edit; 'ingest "
        "upload OUT' stores the same as uploading DATA",
    )
    val.set_defaults(func=cmd_validate)

    # -- read-only: verify and plan ------------------------------------------------------
    ver = sub.add_parser(
        "verify",
        help="compare a dataset with what the app holds (read-only)",
        description="Read what the app holds for every image of DATA (its input and "
        "annotations) and compare it with what an upload of DATA stores. Writes nothing to "
        "the app; the rows to send again go to a CSV that 'ingest upload' takes.",
        usage="ingest verify DATA [options]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=VERIFY_EPILOG,
    )
    _add_data_arguments(
        ver,
        strict="annotations, concepts and metadata keys the app holds and DATA does not "
        "have count as differences (exit 1)",
        strict_dest="extras_differ",
    )
    _add_connection_arguments(
        ver,
        dataset="the dataset the upload put the inputs into: repeated in the command that "
        "sends the rows again (membership is not compared)",
    )
    _add_pace_arguments(ver, upload=False)
    out = _add_output_arguments(ver)
    out.add_argument(
        "--resend",
        metavar="PATH",
        help="the rows to send again, each with what differs in 'error': a file 'ingest "
        "upload' takes (default DATA.resend.csv)",
    )
    ver.set_defaults(func=cmd_verify)

    pln = sub.add_parser(
        "plan",
        help="check credentials, scopes, app and datasets, and estimate an upload (read-only)",
        description="Before an upload: check that the credentials work, that the key has the "
        "scopes the upload needs, that the app and the datasets exist; count what DATA holds; "
        "estimate the upload's requests and time. A few calls, none that writes. Exit 0 when "
        "an upload could start, 2 with the reason when it could not.",
        usage="ingest plan DATA [options]",
    )
    _add_data_arguments(
        pln, strict="plan an upload that sends nothing if any row is invalid (as upload's)"
    )
    conn = _add_connection_arguments(pln, dataset="the dataset the upload adds every input to")
    conn.add_argument(
        "--dataset-version",
        action="store_true",
        help="the upload will make a dataset version at the end (needs Datasets:Add)",
    )
    pln.add_argument(
        "--rps",
        type=positive_float,
        metavar="R",
        help="the request budget the upload will use (default 15)",
    )
    pln.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="inputs per PostInputs and annotations per PostAnnotations (max and default 128)",
    )
    pln.add_argument(
        "--check-existing",
        action="store_true",
        help="also count the images already in the app (one ListInputs per 128 images)",
    )
    pln.add_argument("--report-json", metavar="PATH", help="write the plan here as JSON")
    pln.set_defaults(func=cmd_plan)

    sub.add_parser(
        "sandbox",
        help="run a local Clarifai-compatible server (see 'ingest sandbox --help')",
        add_help=False,
    )

    demo = sub.add_parser(
        "demo",
        help="upload the example data to an in-process sandbox with the live display",
        description="Start a sandbox with realistic limits, upload examples/boxes.csv with "
        "the live display, then one COCO, YOLO and VOC example, and show what the sandbox "
        "holds. Run it from the repository. Its files go to a temporary folder, removed at "
        "the end, and its sandbox stops with it.",
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
