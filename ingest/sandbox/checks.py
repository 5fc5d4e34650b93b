"""The checks a request's items pass before anything is stored: limits, ids, URLs,
images, concepts, datasets, annotations and their regions.

Each refusal is written as Clarifai words it where that is known; where each rule and
wording comes from (a documentation page, a client's source, or a guess) is listed in
``docs/clarifai-behaviour.md``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, TypeAlias

from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.sandbox.images import MAX_IMAGE_BYTES, MAX_MEGAPIXELS, dimensions
from ingest.sandbox.options import SandboxOptions
from ingest.sandbox.replies import set_status
from ingest.sandbox.state import FAILED, PENDING, AppState, payload

__all__ = [
    "ID",
    "MAX_BATCH",
    "MAX_INPUT_ID",
    "MAX_REQUEST_BYTES",
    "Problem",
    "annotation_refused",
    "concept_id_problem",
    "data_refused",
    "id_is_valid",
    "input_id_is_valid",
    "input_problem",
    "too_many",
]

MAX_BATCH = 128
"""Most inputs per PostInputs and annotations per PostAnnotations."""
MAX_INPUT_ID = 48
"""Longest input id."""
MAX_REQUEST_BYTES = 128 * 1024 * 1024
"""Requests must be under this size (the server refuses larger messages)."""
ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""Annotation and dataset ids."""
_INPUT_ID = re.compile(r"[A-Za-z0-9_-]+")
_CONCEPT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

Problem: TypeAlias = tuple[int, str, str]
"""Why an item is refused: ``(code, description, details)``."""


def too_many(reply: Any, items: Any, what: str) -> bool:
    """Fail the whole call (nothing stored) when it carries over :data:`MAX_BATCH` items."""
    if len(items) <= MAX_BATCH:
        return False
    set_status(
        reply.status,
        sc.BAD_REQUEST,
        "Bad request",
        f"at most {MAX_BATCH} {what} per request, got {len(items)}",
    )
    return True


def input_id_is_valid(status: Any, value: str) -> bool:
    """True for a client-chosen input id Clarifai accepts; else the refusal (its own words
    for the length) goes into ``status``."""
    if not 1 <= len(value) <= MAX_INPUT_ID:
        set_status(
            status,
            sc.INPUT_INVALID_ARGUMENT,
            "Invalid input id",
            f"id must be between 1 and {MAX_INPUT_ID} characters long",
        )
        return False
    if not _INPUT_ID.fullmatch(value):
        set_status(
            status,
            sc.INPUT_INVALID_ARGUMENT,
            "Invalid input id",
            f"input id {value!r} may contain only letters, digits, '_' and '-'",
        )
        return False
    return True


def id_is_valid(status: Any, code: int, what: str, value: str) -> bool:
    """True for a valid ``what`` id (annotation...); else the refusal, with ``code``, goes
    into ``status``."""
    if not ID.fullmatch(value):
        set_status(
            status,
            code,
            f"Invalid {what} id",
            f"{what} id {value!r} must match [A-Za-z0-9_-]{{1,128}}",
        )
        return False
    return True


def concept_id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid concept id, or None."""
    if _CONCEPT_ID.fullmatch(value):
        return None
    return f"concept id {value!r} must be 1 to 128 characters of letters, digits, '_' and '-'"


def input_problem(options: SandboxOptions, state: AppState, given: Any) -> Problem | None:
    """Why a new input (its id already checked) cannot be stored, or None (the inputs
    stored earlier in the same call are in ``state`` already)."""
    kind, url, blob = payload(given.data)
    image = given.data.image
    if url:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            return sc.INPUT_INVALID_URL, "Invalid URL", f"unsupported scheme {scheme!r}"
        if (
            kind == "image"
            and options.unique_urls
            and not image.allow_duplicate_url
            and url in state.by_url
        ):
            return (
                sc.INPUT_DUPLICATE,
                "Input already exists",
                f"Duplicate URL in your application: {url} is already the image "
                "of another input (set allow_duplicate_url to add it again)",
            )
    elif not blob:
        return (
            sc.INPUT_INVALID_ARGUMENT,
            "Invalid input",
            "no image, video, audio or text given (by url, bytes or raw text)",
        )
    elif kind == "image":
        size = len(image.base64)
        if size > MAX_IMAGE_BYTES:
            return (
                sc.INPUT_INVALID_ARGUMENT,
                "Invalid input",
                f"the image is {size} bytes; images may be at most 20 MB",
            )
        dims = dimensions(image.base64)
        if dims is not None and dims[0] * dims[1] > MAX_MEGAPIXELS * 1_000_000:
            return (
                sc.INPUT_INVALID_ARGUMENT,
                "Invalid input",
                f"the image is {dims[0]}x{dims[1]} pixels; "
                f"images may have at most {MAX_MEGAPIXELS} megapixels",
            )
    for concept in given.data.concepts:
        problem = concept_id_problem(concept.id)
        if problem is not None:
            return sc.INPUT_INVALID_ARGUMENT, "Invalid concept id", problem
    for dataset_id in given.dataset_ids:
        if options.datasets is not None and dataset_id not in state.datasets:
            return (
                sc.INPUT_INVALID_ARGUMENT,
                "Dataset does not exist",
                f"dataset {dataset_id!r} not found in app {options.app_id}",
            )
    return None


def annotation_refused(state: AppState, given: Any, now: float, item: Any) -> bool:
    """True when annotation ``given`` cannot be stored; the refusal goes into ``item.status``.

    ``item`` is the reply's copy of ``given``: an annotation sent without an id gets one
    here. The annotations stored earlier in the same call are in ``state`` already.
    """
    status = item.status
    if not given.id:
        item.id = uuid.uuid4().hex
    elif not id_is_valid(status, sc.ANNOTATION_INVALID_ARGUMENT, "annotation", given.id):
        return True
    if item.id in state.annotations:
        set_status(
            status,
            sc.DATABASE_DUPLICATE_KEY,
            "Annotation already exists",
            f"annotation id {item.id} already exists",
        )
        return True
    stored = state.inputs.get(given.input_id)
    if stored is None:
        set_status(
            status,
            sc.INPUT_DOES_NOT_EXIST,
            "Input does not exist",
            f"input {given.input_id!r} not found",
        )
        return True
    progress = stored.status(now)
    if progress == PENDING and state.options.pending_annotations == "refuse":
        set_status(
            status,
            sc.ANNOTATION_INVALID_ARGUMENT,
            "Input not ready",
            f"input {given.input_id} is still being processed",
        )
        return True
    if progress == FAILED:
        set_status(
            status,
            sc.ANNOTATION_INVALID_ARGUMENT,
            "Input failed",
            f"input {given.input_id} failed to download",
        )
        return True
    return data_refused(status, given.data)


def data_refused(status: Any, data: Any) -> bool:
    """True (the refusal in ``status``) unless an annotation's data is concepts without a
    region, or one region: a polygon or a bounding box in [0, 1]."""
    regions = data.regions
    if not regions and data.concepts:
        return False
    if len(regions) != 1:
        set_status(
            status,
            sc.ANNOTATION_INVALID_ARGUMENT,
            "Invalid annotation",
            f"one region (or concepts alone) expected, got {len(regions)} regions",
        )
        return True
    info = regions[0].region_info
    if info.HasField("polygon"):
        points = [(p.col, p.row) for p in info.polygon.points]
        if len(points) < 3 or not all(0.0 <= v <= 1.0 for pt in points for v in pt):
            set_status(
                status,
                sc.ANNOTATION_INVALID_ARGUMENT,
                "Invalid polygon",
                f"a polygon needs at least 3 points in [0, 1], got {points[:4]}",
            )
            return True
        return False
    if not info.HasField("bounding_box"):
        set_status(
            status,
            sc.ANNOTATION_INVALID_ARGUMENT,
            "Invalid annotation",
            "the region has no bounding box or polygon",
        )
        return True
    bb = info.bounding_box
    box = (bb.left_col, bb.top_row, bb.right_col, bb.bottom_row)
    if not all(0.0 <= v <= 1.0 for v in box) or not (
        bb.left_col < bb.right_col and bb.top_row < bb.bottom_row
    ):
        set_status(
            status,
            sc.ANNOTATION_INVALID_ARGUMENT,
            "Invalid bounding box",
            f"box {box} must lie in [0, 1] with left < right and top < bottom",
        )
        return True
    return False
