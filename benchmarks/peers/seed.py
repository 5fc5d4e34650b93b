"""The seed script's algorithm (``seed/importing-regions-with-the-clarifai-api.txt``), on gRPC.

A faithful port, used as a benchmark peer. It keeps the 2020 script's algorithm:

- read the whole CSV into memory, check the columns the way the script does (its range
  checks use ``.any()``, so bad values pass), parse concepts and metadata;
- group rows by URL (sorted, like ``DataFrame.groupby``), cut the URLs into chunks of
  ``batch_size`` (16) and hand each chunk to a ``ThreadPoolExecutor(max_workers=10)``;
- per chunk: one PostInputs with server-generated ids (one input per distinct
  ``(url, metadata)``), build one annotation per row (image-level rows included, with an
  empty box, as the script does), poll ListInputs(ids) every second until every input is
  DOWNLOAD_SUCCESS or DOWNLOAD_FAILED (a throttled ListInputs lists nothing, which the
  script reads as "all done"), then PostAnnotations in chunks of ``min(batch_size, 20)``;
- ListWorkflows once at start for the embed model version id;
- no retries: a throttled or failed call loses what it carried.

Changed, only so that it runs: ``time`` is imported; a plain gRPC channel
(``ClarifaiChannel.get_insecure_grpc_channel`` for an ``http://`` base) replaces
``get_json_channel``; ``user_app_id`` is set on every request when a user and app are given
(a PAT needs it); ``embed_model_version_id`` stays unset on annotations (deprecated). Where
the script would crash - a chunk whose PostInputs reply lists no inputs raises ``KeyError``
while building annotations, which re-raises from the main loop only after every other chunk
ran - the chunk is counted as lost and the run goes on. The one liberty: polling gives up
after ``max_polls`` polls (and every call has a deadline) so that a benchmark cannot hang.

Command line::

    python -m benchmarks.peers.seed --csv F --base http://127.0.0.1:PORT \\
        --pat sandbox-pat --user-id sandbox --app-id sandbox-app [--batch-size 16]

prints one JSON line with the counts of :func:`run_seed`.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any
from urllib.parse import urlsplit

from benchmarks.peers.counts import CallCounts, count_with_status, peer_parser

__all__ = ["main", "run_seed", "wrangle_csv"]

BOX_COLUMNS = ("left_col", "top_row", "right_col", "bottom_row")
CALL_TIMEOUT = 60.0
"""Seconds before any single call gives up (the script had none)."""


def chunker(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    return (seq[pos : pos + size] for pos in range(0, len(seq), size))


def _number(value: str | None) -> float | None:
    """A CSV cell as pandas would read a numeric column: empty is NaN (None here)."""
    if value is None or value.strip() == "":
        return None
    return float(value)  # a non-number aborts the whole file, as in the script


def wrangle_csv(csv_path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """``initial_csv_wrangling``: the whole file as a list of row dicts, and its columns."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        raw = list(reader)
    if "url" not in columns:
        raise Exception(
            'Input csv file requires a "url" column, which does not seem to exist. Exiting.'
        )
    if not all(col in columns for col in BOX_COLUMNS):
        raise Exception(
            'The following columns are required: "left_col", "top_row", "right_col", '
            'and "bottom_row". Exiting.'
        )
    rows: list[dict[str, Any]] = []
    for r in raw:
        row: dict[str, Any] = {"url": r["url"] or None}
        for col in BOX_COLUMNS:
            row[col] = _number(r.get(col))
        if "pos_concepts" in columns:
            row["pos_concepts"] = list(set((r.get("pos_concepts") or "").split("|")))
        if "neg_concepts" in columns:
            row["neg_concepts"] = list(set((r.get("neg_concepts") or "").split("|")))
        if "metadata" in columns:
            try:
                row["metadata"] = json.loads(r.get("metadata") or "{}")
            except Exception:
                raise Exception(
                    'Value in "metadata" column does not seem to be a properly JSON formatted str.'
                ) from None
        rows.append(row)
    # The script's checks, with its semantics: `(col.between(0, 1).any() | col.isnull()).any()`
    # fails only when no value of the column is in range and none is empty.
    for col in BOX_COLUMNS:
        values = [r[col] for r in rows]
        in_range = any(v is not None and 0 <= v <= 1 for v in values)
        if not (in_range or any(v is None for v in values)):
            raise Exception(
                f'Note: Not all specified values in the "{col}" column are between 0 and 1. Exiting'
            )
    for lo, hi in (("left_col", "right_col"), ("top_row", "bottom_row")):
        pairs = [(r[lo], r[hi]) for r in rows if r[lo] is not None and r[hi] is not None]
        if not any(a < b for a, b in pairs):
            raise Exception(
                f'Note: Not all specified values in "{lo}" are less than the specified '
                f'values in "{hi}".'
            )
    return rows, columns


class _Client:
    """The stub, the auth metadata, and thread-safe counts of every call and its reply."""

    def __init__(self, stub: Any, token: str, user_app_id: Any, timeout: float) -> None:
        from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

        self.stub = stub
        self.metadata = (("authorization", f"Key {token}"),)
        self.user_app_id = user_app_id
        self.timeout = timeout
        self.counts = CallCounts(throttled_codes=(sc.CONN_THROTTLED,))

    def call(self, method: str, request: Any) -> Any:
        import grpc

        if self.user_app_id is not None:
            request.user_app_id.CopyFrom(self.user_app_id)
        self.counts.sent(method)
        try:
            reply = getattr(self.stub, method)(
                request, metadata=self.metadata, timeout=self.timeout
            )
        except grpc.RpcError as exc:
            self.counts.failed(exc)
            raise
        self.counts.replied(reply.status.code)
        return reply


class _Outcome:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inputs_sent = 0
        self.inputs_created = 0
        self.inputs_download_failed = 0
        self.annotations_sent = 0
        self.annotations_created = 0
        self.polls = 0
        self.polls_gave_up = 0

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


def process_and_upload_chunk(
    client: _Client,
    chunk: list[dict[str, Any]],
    columns: list[str],
    batch_size: int,
    outcome: _Outcome,
    max_polls: int,
    poll_interval: float,
) -> tuple[int, list[Any]]:
    """One chunk of URLs: PostInputs, poll ListInputs, PostAnnotations (as in the script)."""
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2
    from clarifai_grpc.grpc.api.status import status_code_pb2
    from google.protobuf.struct_pb2 import Struct

    def process_input_proto(row: dict[str, Any]) -> Any:
        metadata = Struct()
        if "metadata" in row:
            metadata.update(row["metadata"])
        return resources_pb2.Input(
            data=resources_pb2.Data(image=resources_pb2.Image(url=row["url"]), metadata=metadata)
        )

    # unique (url, metadata) pairs, in order, like drop_duplicates on the two columns
    has_metadata = "metadata" in columns
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for row in chunk:
        key = (row["url"], json.dumps(row["metadata"]) if has_metadata else "")
        if key not in unique:
            unique[key] = {"url": row["url"]}
            if has_metadata:
                unique[key]["metadata"] = row["metadata"]
    inputs = [process_input_proto(each) for each in unique.values()]

    request = service_pb2.PostInputsRequest(inputs=inputs)
    response = client.call("PostInputs", request)
    outcome.add(
        inputs_sent=len(inputs),
        inputs_created=count_with_status(
            response.inputs,
            (
                status_code_pb2.SUCCESS,
                status_code_pb2.INPUT_DOWNLOAD_PENDING,
                status_code_pb2.INPUT_DOWNLOAD_IN_PROGRESS,
                status_code_pb2.INPUT_DOWNLOAD_SUCCESS,
            ),
        ),
    )

    url2id_dict = {inp.data.image.url: inp.id for inp in response.inputs}

    def process_annotation_proto(row: dict[str, Any]) -> Any:
        concept_protos = []
        for concept in row.get("pos_concepts", ()):
            if concept != "":
                concept_protos.append(resources_pb2.Concept(id=concept, name=concept, value=1))
        for concept in row.get("neg_concepts", ()):
            if concept != "":
                concept_protos.append(resources_pb2.Concept(id=concept, name=concept, value=0))
        nan = math.nan  # pandas hands NaN to the proto for an empty cell
        return resources_pb2.Annotation(
            input_id=url2id_dict[row["url"]],  # KeyError when PostInputs listed nothing
            data=resources_pb2.Data(
                regions=[
                    resources_pb2.Region(
                        region_info=resources_pb2.RegionInfo(
                            bounding_box=resources_pb2.BoundingBox(
                                left_col=nan if row["left_col"] is None else row["left_col"],
                                top_row=nan if row["top_row"] is None else row["top_row"],
                                right_col=nan if row["right_col"] is None else row["right_col"],
                                bottom_row=nan if row["bottom_row"] is None else row["bottom_row"],
                            )
                        ),
                        data=resources_pb2.Data(concepts=concept_protos),
                    )
                ]
            ),
        )

    annotations = [process_annotation_proto(each) for each in chunk]

    # wait until every input finished processing (bounded: the only liberty taken)
    inps_done = False
    ids = [x.id for x in response.inputs]
    polls = 0
    inps_status: list[int] = []
    while not inps_done:
        if polls >= max_polls:
            outcome.add(polls_gave_up=1)
            raise TimeoutError(f"inputs still processing after {polls} polls")
        time.sleep(poll_interval)
        polls += 1
        outcome.add(polls=1)
        listinp_res = client.call("ListInputs", service_pb2.ListInputsRequest(ids=ids))
        inps_status = [x.status.code for x in listinp_res.inputs]
        inps_done = all(
            x in (status_code_pb2.INPUT_DOWNLOAD_SUCCESS, status_code_pb2.INPUT_DOWNLOAD_FAILED)
            for x in inps_status
        )
    outcome.add(
        inputs_download_failed=sum(
            1 for x in inps_status if x == status_code_pb2.INPUT_DOWNLOAD_FAILED
        )
    )

    annot_batch_size = min(batch_size, 20)
    response_annots = []
    for chunk_annots in chunker(annotations, annot_batch_size):
        request = service_pb2.PostAnnotationsRequest(annotations=chunk_annots)
        response_annot = client.call("PostAnnotations", request)
        response_annots.append(response_annot)
        outcome.add(
            annotations_sent=len(chunk_annots),
            annotations_created=count_with_status(
                response_annot.annotations,
                (status_code_pb2.ANNOTATION_SUCCESS, status_code_pb2.SUCCESS),
            ),
        )
    return response.status.code, response_annots


def make_stub(host: str, port: int | None, *, secure: bool = False) -> Any:
    """A sync V2 stub on a plain gRPC channel (never ``get_json_channel``)."""
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import service_pb2_grpc

    if secure:
        base = host if port is None else f"{host}:{port}"
        channel = ClarifaiChannel.get_grpc_channel(base=base)
    else:
        channel = ClarifaiChannel.get_insecure_grpc_channel(base=host, port=port or 18080)
    return service_pb2_grpc.V2Stub(channel), channel


def run_seed(
    csv_path: str,
    host: str,
    port: int | None,
    token: str,
    user_id: str | None = None,
    app_id: str | None = None,
    batch_size: int = 16,
    *,
    workers: int = 10,
    max_polls: int = 300,
    poll_interval: float = 1.0,
    call_timeout: float = CALL_TIMEOUT,
    secure: bool = False,
) -> dict[str, Any]:
    """Run the seed algorithm on ``csv_path`` against ``host:port``; return its counts."""
    from clarifai_grpc.grpc.api import resources_pb2, service_pb2
    from clarifai_grpc.grpc.api.status import status_code_pb2

    started = time.perf_counter()
    stub, channel = make_stub(host, port, secure=secure)
    user_app_id = (
        resources_pb2.UserAppIDSet(user_id=user_id, app_id=app_id) if user_id and app_id else None
    )
    client = _Client(stub, token, user_app_id, call_timeout)
    outcome = _Outcome()
    try:
        rows, columns = wrangle_csv(csv_path)

        app_workflows = client.call("ListWorkflows", service_pb2.ListWorkflowsRequest())
        try:
            found = [
                x.model.model_version.id
                for x in app_workflows.workflows[0].nodes
                if "embed" in x.id
            ]
            embed_model_version_id: str | None = found[0]
        except Exception:
            embed_model_version_id = None  # the script prints a note and goes on
        del embed_model_version_id  # found as in the script, but deprecated: left unset

        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row["url"] is not None:  # groupby drops NaN keys
                groups.setdefault(row["url"], []).append(row)
        urls = sorted(groups)  # groupby sorts its keys
        chunks = [
            [row for url in chunk_urls for row in groups[url]]
            for chunk_urls in chunker(urls, batch_size)
        ]
        # the script selects rows with isin(), i.e. in file order
        order = {id(row): i for i, row in enumerate(rows)}
        for chunk in chunks:
            chunk.sort(key=lambda r: order[id(r)])

        chunk_status: Counter[str] = Counter()
        chunks_lost = 0
        errors: Counter[str] = Counter()
        with ThreadPoolExecutor(max_workers=workers) as executor:
            threads = [
                executor.submit(
                    process_and_upload_chunk,
                    client,
                    chunk,
                    columns,
                    batch_size,
                    outcome,
                    max_polls,
                    poll_interval,
                )
                for chunk in chunks
            ]
            for task in as_completed(threads):
                try:
                    code = task.result()[0]
                except Exception as exc:  # the script would re-raise this after all chunks ran
                    chunks_lost += 1
                    errors[type(exc).__name__] += 1
                    continue
                chunk_status[str(code)] += 1
                if code == status_code_pb2.CONN_INSUFFICIENT_SCOPES:
                    raise Exception(
                        "The API key provided does not have enough scopes to post "
                        "inputs/annotations/concepts."
                    )
                if code in (status_code_pb2.CONN_KEY_INVALID, status_code_pb2.CONN_KEY_NOT_FOUND):
                    raise Exception("The API key provided is either invalid or does not exist.")
    finally:
        channel.close()

    elapsed = time.perf_counter() - started
    return {
        "peer": "seed",
        "rows": len(rows),
        "images": len(groups),
        "chunks": len(chunks),
        "chunks_lost": chunks_lost,
        "chunk_errors": dict(errors),
        "chunk_status": dict(chunk_status),
        "inputs_sent": outcome.inputs_sent,
        "inputs_created": outcome.inputs_created,
        "inputs_download_failed": outcome.inputs_download_failed,
        "annotations_sent": outcome.annotations_sent,
        "annotations_created": outcome.annotations_created,
        "annotations_failed": outcome.annotations_sent - outcome.annotations_created,
        "polls": outcome.polls,
        "polls_gave_up": outcome.polls_gave_up,
        **client.counts.summary(),
        "elapsed_s": round(elapsed, 3),
    }


def parse_base(base: str) -> tuple[str, int | None, bool]:
    """``http://host:port`` (plaintext) or ``https://host[:port]`` (TLS)."""
    parts = urlsplit(base if "://" in base else f"http://{base}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--base must be http://host:port or https://host[:port], got {base!r}")
    secure = parts.scheme == "https"
    if not secure and parts.port is None:
        raise ValueError("a plaintext --base needs a port: http://host:port")
    return parts.hostname, parts.port, secure


def main(argv: Sequence[str] | None = None) -> int:
    parser = peer_parser(
        "benchmarks.peers.seed",
        "The seed script's algorithm on gRPC (a benchmark peer).",
    )
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--pat", help="personal access token (needs --user-id and --app-id)")
    key.add_argument("--api-key", help="app-scoped API key")
    parser.add_argument("--user-id")
    parser.add_argument("--app-id")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--max-polls", type=int, default=300, help="give up a chunk after N polls")
    args = parser.parse_args(argv)
    if args.pat and not (args.user_id and args.app_id):
        parser.error("--pat needs --user-id and --app-id")
    try:
        host, port, secure = parse_base(args.base)
    except ValueError as exc:
        parser.error(str(exc))
    result = run_seed(
        args.csv,
        host,
        port,
        args.pat or args.api_key,
        args.user_id,
        args.app_id,
        args.batch_size,
        workers=args.workers,
        max_polls=args.max_polls,
        secure=secure,
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
