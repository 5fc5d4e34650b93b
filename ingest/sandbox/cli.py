"""``python -m ingest.sandbox`` / ``ingest sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import anyio

from ingest.sandbox.auth import READ_SCOPES
from ingest.sandbox.options import DATASET_MEMBER_AGAIN, PENDING_ANNOTATIONS, SandboxOptions
from ingest.sandbox.patching import OVERWRITE_READINGS
from ingest.sandbox.server import Sandbox

__all__ = [
    "DEFAULT_PORT",
    "add_arguments",
    "add_reading_arguments",
    "main",
    "options_from_args",
    "run_from_args",
    "serve",
]

DEFAULT_PORT = 18080
"""Port of ``ingest sandbox`` when ``--port`` is not given."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options, for this module's parser and the ``ingest`` command."""
    d = SandboxOptions()
    a = parser.add_argument
    a(
        "--host",
        default=d.host,
        help="address to bind (default %(default)s: reachable from this machine only)",
    )
    a(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="port; 0 picks a free one (default %(default)s)",
    )
    a("--user-id", default=d.user_id, help="the user's id (default %(default)s)")
    a("--app-id", default=d.app_id, help="the app's id (default %(default)s)")
    a(
        "--pat",
        action="append",
        default=None,
        help=f"a personal access token of the user; repeatable (default {d.pats[0]})",
    )
    a(
        "--api-key",
        action="append",
        default=None,
        help=f"an app key of the app; repeatable (default {d.api_keys[0]})",
    )
    a(
        "--rps",
        type=float,
        default=d.rps,
        help="requests/s per key, 0 = unlimited (default %(default)s)",
    )
    a("--latency", type=float, default=d.latency, help="seconds added to every call")
    a("--latency-jitter", type=float, default=d.latency_jitter, help="+/- uniform jitter")
    a(
        "--processing",
        type=float,
        nargs=2,
        default=d.processing,
        metavar=("MIN", "MAX"),
        help="seconds an input takes to process (default %(default)s)",
    )
    for flag, what in (
        ("--download-failure-rate", "URLs that fail to download (URLs with 'broken' always fail)"),
        ("--stuck-rate", "inputs never processed"),
        ("--unavailable-rate", "calls failed with UNAVAILABLE before acting"),
        ("--lost-reply-rate", "calls that act, then fail with UNAVAILABLE"),
        ("--spike-rate", "calls delayed by --spike-seconds"),
    ):
        default = getattr(d, flag[2:].replace("-", "_"))
        a(flag, type=float, default=default, metavar="FRACTION", help=f"fraction of {what}")
    a("--spike-seconds", type=float, default=d.spike_seconds, help="length of a latency spike")
    a("--seed", type=int, default=d.seed, help="seed of every random draw")
    a("--no-store", action="store_true", help="keep only ids and statuses (huge runs)")
    a(
        "--tls",
        action="store_true",
        help="serve TLS with a certificate made at start; prints where its CA file is "
        "(give it to 'ingest upload --ca-file')",
    )
    a(
        "--dataset",
        action="append",
        default=None,
        metavar="ID",
        help="a dataset the app has; repeatable. Once any is given, inputs naming another "
        "dataset fail as on Clarifai (default: datasets are made on first use)",
    )
    a(
        "--allow-duplicate-urls",
        action="store_false",
        dest="unique_urls",
        help="let inputs share a URL (by default an input whose URL another input has is "
        "refused with INPUT_DUPLICATE, as Clarifai does unless allow_duplicate_url is set)",
    )
    a(
        "--input-quota",
        type=int,
        default=None,
        metavar="N",
        help="the app holds at most N inputs; more fail with INPUT_OVER_LIMIT",
    )
    a(
        "--hourly-limit",
        type=int,
        default=None,
        metavar="N",
        help="requests per key per hour; more answer CONN_EXCEED_HOURLY_LIMIT",
    )
    a(
        "--disable",
        action="append",
        default=None,
        metavar="METHOD",
        help="a method the plan disallows (e.g. PostAnnotations): it answers "
        "CONN_ACCOUNT_ISSUES; repeatable",
    )
    a(
        "--delete-app-after",
        type=int,
        default=None,
        metavar="N",
        help="the app is deleted after N calls: later calls answer CONN_DOES_NOT_EXIST",
    )
    a("--stats", default=None, metavar="PATH", help="write statistics as JSON here at shutdown")
    add_reading_arguments(parser)


def add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    """Readings of loosely documented behaviour, read-only keys and the data host."""
    d = SandboxOptions()
    a = parser.add_argument
    a(
        "--pending-annotations",
        choices=PENDING_ANNOTATIONS,
        default=d.pending_annotations,
        help="what PostAnnotations does with an annotation of an input still processing: "
        "refuse it (ANNOTATION_INVALID_ARGUMENT, the default) or accept it",
    )
    a(
        "--dataset-member-again",
        choices=DATASET_MEMBER_AGAIN,
        default=d.dataset_member_again,
        help="what PostDatasetInputs answers for an input the dataset holds already: "
        "accept it (SUCCESS, the default) or refuse it (DATASET_INPUT_DUPLICATE)",
    )
    a(
        "--job-counts-refused",
        action="store_true",
        help="an inputs-add job also counts the inputs PostInputs refused, as failed "
        "(by default it counts only the inputs it created, as the proto says)",
    )
    a(
        "--read-only-key",
        action="append",
        default=None,
        metavar="KEY",
        help="an app key with only the reading scopes (Inputs:Get, Datasets:Get...): it lists "
        "and gets everything, and every write answers CONN_INSUFFICIENT_SCOPES; repeatable",
    )
    a(
        "--no-data-host",
        action="store_false",
        dest="data_host",
        help="serve no HTTP data host: listed inputs then carry neither their bytes nor a "
        "hosted URL, and dataset exports fail",
    )
    a(
        "--patch-overwrite",
        choices=OVERWRITE_READINGS,
        default=d.patch_overwrite,
        help="how PatchInputs 'overwrite' reads (the docs admit three): whole = the metadata "
        "and concepts become what was sent; keys = each top-level key sent is replaced, "
        "the others kept; deep = objects merge recursively (default %(default)s)",
    )


def options_from_args(ns: argparse.Namespace) -> SandboxOptions:
    """The options the parsed command line asks for."""
    d = SandboxOptions()
    worked_out: dict[str, Any] = {
        "pats": tuple(ns.pat or d.pats),
        "api_keys": tuple(ns.api_key or d.api_keys),
        "processing": (ns.processing[0], ns.processing[1]),
        "store": not ns.no_store,
        "stats_path": ns.stats,
        "datasets": tuple(ns.dataset) if ns.dataset else None,
        "disabled": tuple(ns.disable or ()),
        "scoped_keys": dict.fromkeys(ns.read_only_key or (), READ_SCOPES),
    }
    # Every other option whose flag has the field's name is taken as parsed.
    parsed = vars(ns)
    same_name = {
        f.name: parsed[f.name]
        for f in fields(SandboxOptions)
        if f.name in parsed and f.name not in worked_out
    }
    return SandboxOptions(**worked_out, **same_name)


async def serve(options: SandboxOptions) -> None:
    """Serve until SIGINT or SIGTERM."""
    async with Sandbox(options) as sb:
        o = sb.options
        print(
            f"sandbox listening on {sb.base_url} (app {o.app_id}, user {o.user_id}, "
            f"pat {o.pats[0]}, key {o.api_keys[0]})",
            flush=True,
        )
        if sb.ca_file is not None:
            print(
                f"TLS: the certificate authority is {sb.ca_file} (for hosts "
                f"{', '.join(o.tls_hosts)}); upload with --ca-file {sb.ca_file} or "
                f"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH={sb.ca_file}",
                flush=True,
            )
        if sb.data_url:
            print(f"data host (hosted input bytes, exports) on {sb.data_url}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        s = sb.stats
        print(
            f"sandbox stopped: {sum(s.requests.values())} requests, {s.throttled} throttled, "
            f"{s.inputs_stored} inputs, {s.annotations_stored} annotations stored",
            file=sys.stderr,
        )


def run_from_args(ns: argparse.Namespace) -> int:
    """Serve in the foreground until Ctrl-C or SIGTERM; the exit status.

    0 after a clean stop, 2 when the options are invalid or the port cannot be bound.
    """
    try:
        options = options_from_args(ns)
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        anyio.run(serve, options, backend="asyncio")
    except OSError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ingest.sandbox [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m ingest.sandbox",
        description="A local Clarifai-compatible gRPC server for dry runs and tests.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
