"""The official ``clarifai`` Python SDK as a benchmark peer: ``Dataset.upload_dataset``.

Used the way the SDK documents detection data: a ``ClarifaiDataLoader`` subclass with
``task = "visual_detection"`` whose ``__getitem__`` returns one ``VisualDetectionFeatures``
per image (labels, ``bboxes`` as ``[x_min, y_min, x_max, y_max]`` normalised, ``id``,
``metadata``), handed to ``Dataset(...).upload_dataset(dataloader=..., batch_size=...)``.

What the SDK does with it (clarifai 12.5.0, ``client/dataset.py``, ``client/input.py``):
``min(10, cpu_count())`` threads, each taking a batch of ``batch_size`` (<= 128) images:
PostInputs (client ids ``<dataset_id>-<id>``, ``dataset_ids``, ``inputs_add_job_id``),
GetInputsAddJob until the job's pending and in-progress counts are 0 (sleeping
0.1*1.3**n s from n=11), ListInputs(ids, status=DOWNLOAD_SUCCESS), DeleteInputs of the
rest (always sent, even with no ids), then PostAnnotations in chunks of ``batch_size`` on
4 more threads; failed inputs are re-uploaded up to twice. Every call retries
CONN_THROTTLED and UNAVAILABLE with a fixed 5 s sleep, 10 attempts.

Differences from the CSV the other peers read, all forced by the SDK:

- ``VisualDetectionFeatures`` has no URL field and ``VisualDetectionDataset`` reads
  ``image_path`` as a local file (``open(path, 'rb')``) unless ``image_bytes`` is given. A
  user with a CSV of URLs has to fetch the images first; this peer skips the fetch and sends
  the URL's own bytes as ``image_bytes`` (same size on the wire as the URL). So the sandbox's
  download failures, which are drawn by URL, do not apply to this peer's inputs.
- One label per box (``Concept(value=1)``): the row's first positive concept in sorted order
  (``"object"`` when it has none); other positive and all negative concepts are dropped.
- Rows without a box (image-level labels) cannot be expressed: the image is uploaded with
  only its boxes (or none).
- Metadata is the first row's JSON object for the image.

The SDK is imported lazily: this module imports without it. Run it where ``clarifai`` is
installed (``/tmp/sdk/bin/python`` here, or ``pip install -e '.[bench]'``)::

    python -m benchmarks.peers.sdk --csv F --base http://127.0.0.1:PORT \\
        --pat sandbox-pat --user-id sandbox --app-id sandbox-app [--batch-size 32] [--trace]

prints one JSON line like the seed peer's. ``--trace`` routes the calls through
:class:`benchmarks.peers.trace.TraceProxy` and adds a per-RPC summary.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from benchmarks.peers.counts import CallCounts, count_with_status, peer_parser

__all__ = ["load_images", "main", "make_loader", "run_sdk"]

BOX_COLUMNS = ("left_col", "top_row", "right_col", "bottom_row")


def load_images(csv_path: str) -> list[dict[str, Any]]:
    """The CSV, grouped by URL in first-seen order: one dict per image.

    Rows that cannot be read (a non-number in a box column, metadata that is not a JSON
    object, a box outside [0, 1]) are skipped and counted in ``rows_skipped`` by callers."""
    images: dict[str, dict[str, Any]] = {}
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            url = (row.get("url") or "").strip()
            if not url:
                continue
            try:
                cells = [(row.get(c) or "").strip() for c in BOX_COLUMNS]
                box = [float(v) for v in cells] if all(cells) else None
                meta_text = (row.get("metadata") or "").strip()
                metadata = json.loads(meta_text) if meta_text else {}
                if not isinstance(metadata, dict):
                    raise ValueError("metadata is not an object")
                if box is not None:
                    left, top, right, bottom = box
                    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
                        raise ValueError("box out of range")
            except ValueError:
                image = images.setdefault(url, _new_image(url, {}))
                image["rows_skipped"] += 1
                continue
            image = images.setdefault(url, _new_image(url, metadata))
            image["rows"] += 1
            if box is None:
                continue
            concepts = sorted(c for c in (row.get("pos_concepts") or "").split("|") if c)
            image["labels"].append(concepts[0] if concepts else "object")
            # the SDK's order: [x_min, y_min, x_max, y_max]
            image["bboxes"].append([box[0], box[1], box[2], box[3]])
    return list(images.values())


def _new_image(url: str, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": url,
        # client id, deterministic: the SDK makes it "<dataset_id>-<id>"
        "id": hashlib.sha256(url.encode()).hexdigest()[:24],
        "metadata": metadata,
        "labels": [],
        "bboxes": [],
        "rows": 0,
        "rows_skipped": 0,
    }


def make_loader(images: list[dict[str, Any]]) -> Any:
    """A ``ClarifaiDataLoader`` for ``visual_detection`` over ``images``."""
    from clarifai.datasets.upload.base import ClarifaiDataLoader
    from clarifai.datasets.upload.features import VisualDetectionFeatures

    class CsvDetectionLoader(ClarifaiDataLoader):  # type: ignore[misc]
        """One ``VisualDetectionFeatures`` per image of the CSV."""

        def __init__(self, items: list[dict[str, Any]]) -> None:
            super().__init__()
            self.items = items

        @property
        def task(self) -> str:
            return "visual_detection"

        def load_data(self) -> None:
            pass

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, index: int) -> Any:
            item = self.items[index]
            return VisualDetectionFeatures(
                image_path=item["url"],
                labels=item["labels"],
                bboxes=item["bboxes"],
                id=item["id"],
                metadata=item["metadata"],
                image_bytes=item["url"].encode(),
            )

    return CsvDetectionLoader(images)


class _Counts(CallCounts):
    """Calls, replies and per-item outcomes, seen below the SDK's retries."""

    def __init__(self) -> None:
        from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

        super().__init__(throttled_codes=(sc.CONN_THROTTLED, sc.CONN_EXCEED_HOURLY_LIMIT))
        self.sc = sc
        self.inputs_sent = 0
        self.inputs_created = 0
        self.inputs_deleted = 0
        self.annotations_sent = 0
        self.annotations_created = 0

    def record(self, method: str, request: Any, reply: Any | None, error: Any | None) -> None:
        sc = self.sc
        self.sent(method)
        if error is not None:
            self.failed(error)
            return
        assert reply is not None  # no error: the call returned a reply
        code = reply.status.code
        if self.replied(code):  # throttled: nothing was done
            return
        with self.lock:
            if method == "PostInputs":
                self.inputs_sent += len(request.inputs)
                self.inputs_created += count_with_status(
                    reply.inputs,
                    (sc.SUCCESS, sc.INPUT_DOWNLOAD_PENDING, sc.INPUT_DOWNLOAD_SUCCESS),
                )
            elif method == "DeleteInputs" and code == sc.SUCCESS:
                self.inputs_deleted += len(request.ids)
            elif method == "PostAnnotations":
                self.annotations_sent += len(request.annotations)
                self.annotations_created += count_with_status(
                    reply.annotations, (sc.SUCCESS, sc.ANNOTATION_SUCCESS)
                )


def _count_calls(client: Any, counts: _Counts) -> None:
    """Wrap the raw V2 stub under the SDK's retrying, authorising stub of ``client``.

    Measurement only: every call still goes through the SDK's own retry and auth layers."""
    from clarifai.client.auth.register import RpcCallable

    class CountingCallable(RpcCallable):  # type: ignore[misc]
        def __init__(self, name: str, func: Any) -> None:
            self.name = name
            self.f = func

        def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            import grpc

            try:
                reply = self.f(request, *args, **kwargs)
            except grpc.RpcError as exc:
                counts.record(self.name, request, None, exc)
                raise
            counts.record(self.name, request, reply, None)
            return reply

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    class CountingStub:
        def __init__(self, stub: Any) -> None:
            self._stub = stub

        def __getattr__(self, name: str) -> Any:
            value = getattr(self._stub, name)
            if isinstance(value, RpcCallable):
                return CountingCallable(name, value)
            return value

    authorized = client.STUB.stub  # RetryStub -> AuthorizedStub -> grpc V2Stub
    authorized.stub = CountingStub(authorized.stub)


def run_sdk(
    csv_path: str,
    base_url: str,
    pat: str,
    user_id: str,
    app_id: str,
    batch_size: int = 32,
    *,
    dataset_id: str = "bench",
    create_dataset: bool = False,
    trace: bool = False,
    quiet: bool = True,
) -> dict[str, Any]:
    """Upload ``csv_path`` with ``Dataset.upload_dataset``; return counts like the seed peer's.

    ``base_url`` is ``http://host:port`` (the SDK then opens a plaintext channel without
    probing) or ``https://...``. ``create_dataset`` first calls ``App.create_dataset``
    (PostDatasets), as the docs do for a new dataset. ``trace`` sends every call through a
    :class:`~benchmarks.peers.trace.TraceProxy` and adds ``trace`` to the result."""
    if quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")
        logging.getLogger("clarifai").setLevel(logging.ERROR)
    proxy = None
    target = base_url
    if trace:
        from benchmarks.peers.trace import TraceProxy

        upstream = urlsplit(base_url)
        proxy = TraceProxy(f"{upstream.hostname}:{upstream.port}")
        proxy.start()
        target = proxy.base_url
    started = time.perf_counter()
    error: str | None = None
    images = load_images(csv_path)
    try:
        from clarifai.client.dataset import Dataset

        loader = make_loader(images)
        counts = _Counts()
        try:
            if create_dataset:
                from clarifai.client.app import App

                app = App(app_id=app_id, user_id=user_id, base_url=target, pat=pat)
                _count_calls(app, counts)
                app.create_dataset(dataset_id=dataset_id)
            dataset = Dataset(
                dataset_id=dataset_id, user_id=user_id, app_id=app_id, base_url=target, pat=pat
            )
            _count_calls(dataset, counts)
            _count_calls(dataset.input_object, counts)
            if quiet:
                logging.getLogger("clarifai").setLevel(logging.ERROR)
            dataset.upload_dataset(dataloader=loader, batch_size=batch_size)
        except Exception as exc:  # reported in the result: the SDK gives up on the first error
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
    finally:
        if proxy is not None:
            proxy.stop()
    result: dict[str, Any] = {
        "peer": "sdk",
        "rows": sum(i["rows"] + i["rows_skipped"] for i in images),
        "rows_skipped": sum(i["rows_skipped"] for i in images),
        "images": len(images),
        "boxes": sum(len(i["bboxes"]) for i in images),
        "inputs_sent": counts.inputs_sent,
        "inputs_created": counts.inputs_created,
        "inputs_deleted": counts.inputs_deleted,
        "annotations_sent": counts.annotations_sent,
        "annotations_created": counts.annotations_created,
        "annotations_failed": counts.annotations_sent - counts.annotations_created,
        **counts.summary(),
        "elapsed_s": round(elapsed, 3),
        "error": error,
    }
    if proxy is not None:
        result["trace"] = proxy.summary()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = peer_parser(
        "benchmarks.peers.sdk",
        "The official clarifai SDK's Dataset.upload_dataset (a benchmark peer).",
    )
    parser.add_argument("--pat", default=os.environ.get("CLARIFAI_PAT"))
    parser.add_argument("--user-id", default=os.environ.get("CLARIFAI_USER_ID"))
    parser.add_argument("--app-id", default=os.environ.get("CLARIFAI_APP_ID"))
    parser.add_argument("--dataset-id", default="bench")
    parser.add_argument("--batch-size", type=int, default=32, help="the SDK's default is 32")
    parser.add_argument(
        "--create-dataset", action="store_true", help="App.create_dataset first (PostDatasets)"
    )
    parser.add_argument("--trace", action="store_true", help="add a per-RPC trace")
    parser.add_argument("--verbose", action="store_true", help="keep the SDK's logs and bars")
    args = parser.parse_args(argv)
    if not (args.pat and args.user_id and args.app_id):
        parser.error("--pat, --user-id and --app-id are required (or CLARIFAI_* variables)")
    parts = urlsplit(args.base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        parser.error("--base must be http://host:port or https://host[:port]")
    if args.trace and parts.scheme != "http":
        parser.error("--trace needs a plaintext http:// base")
    try:
        import clarifai  # noqa: F401
    except ImportError:
        parser.error("the clarifai SDK is not installed here (pip install -e '.[bench]')")
    result = run_sdk(
        args.csv,
        args.base,
        args.pat,
        args.user_id,
        args.app_id,
        args.batch_size,
        dataset_id=args.dataset_id,
        create_dataset=args.create_dataset,
        trace=args.trace,
        quiet=not args.verbose,
    )
    print(json.dumps(result), flush=True)
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
