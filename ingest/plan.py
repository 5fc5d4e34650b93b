"""Before an upload: can it start, what will it send, how long will it take. Read-only.

:func:`make_plan` (``Ingester.plan``, ``ingest plan``) checks, with a few calls and none
that writes:

* the credentials and the app: ``MyScopes`` (any valid key may call it) answers with the
  key's scopes and the app; a bad key or a missing app is refused there, as by any call;
* the scopes: those the upload's calls need (:data:`~ingest.errors.CALL_SCOPES`: Inputs:Add,
  Inputs:Get, Inputs:Patch, Annotations:Add; Datasets:Add when the data names datasets or a
  version is asked for), each missing one named;
* the datasets: ``Config.dataset_id`` must exist (the upload adds every input to it and does
  not make it); those the data names (``dataset_id`` cells, ``--dataset-per-split``) exist
  or will be made (Datasets:Add). Listed with ``ListDatasets`` when the key may
  (Datasets:Get);
* the data: the counting pass of ``validate`` (:func:`~ingest.source.validate_path`:
  rows, images, boxes, polygons, invalid rows with their reasons, the datasets named),
  whether its rows must be grouped on disk first and how much temp space that takes (and
  whether the temp folder has it); with ``Config.strict``, any invalid row stops it;
* with ``check_existing``: how many of the images the app holds already (``ListInputs``
  by ids, 128 at a time, over the rows grouped by image);
* the estimate of requests and wall time at ``Config.rps``
  (:func:`~ingest.estimate.estimate_upload`: the arithmetic of the benchmarks' ceilings).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as sc

from ingest.client import Client, describe
from ingest.config import Config
from ingest.errors import CALL_SCOPES, READ_SCOPES, ClarifaiError
from ingest.estimate import Estimate, estimate_upload
from ingest.model import InvalidRow
from ingest.source import DatasetPath, RowSource, ValidationSummary, detect, validate_path
from ingest.source.csvfile import CsvSource
from ingest.source.grouping import scan_order
from ingest.verify import read_inputs

__all__ = ["ALL_SCOPES", "Check", "Plan", "make_plan"]

ALL_SCOPES = "All"
"""The scope MyScopes names for a credential that may do everything."""

#: Invalid rows a plan keeps (the first ones, with their reasons).
SHOWN_INVALID = 5

#: The order the checks are told in (by the first word of their name).
_ORDER = {"credentials": 0, "app": 1, "scopes": 2, "dataset": 3, "temp": 4, "data": 5}

#: The most dataset pages ListDatasets is asked for (a thousand datasets a page).
_DATASET_PAGES = 100


@dataclass(frozen=True, slots=True)
class Check:
    """One thing an upload needs, and whether it holds."""

    name: str
    ok: bool
    says: str


@dataclass
class Plan:
    """What an upload of some data into the app would meet, and take.

    ``ready``: every check holds, an upload could start (exit 0); else ``problems`` says
    why not, one sentence each.
    """

    source: Path
    checks: list[Check] = field(default_factory=list)
    data: ValidationSummary = field(default_factory=ValidationSummary)
    scopes: list[str] = field(default_factory=list)
    """The key's scopes, as MyScopes names them (empty when it could not be asked)."""
    grouping: str = "none"
    """How the rows reach the upload grouped by image: ``none`` (they already are, or the
    format gives them so), ``disk`` (grouped on disk first)."""
    temp_bytes: int = 0
    """About the temp space the grouping writes (removed at the end)."""
    existing: int | None = None
    """Images the app holds already (``check_existing``), else None."""
    estimate: Estimate | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> list[str]:
        return [c.says for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """The JSON plan."""
        d = self.data
        est = self.estimate
        return {
            "source": str(self.source),
            "ready": self.ready,
            "checks": [{"name": c.name, "ok": c.ok, "says": c.says} for c in self.checks],
            "scopes": list(self.scopes),
            "rows": d.rows,
            "rows_invalid": len(d.invalid),
            "invalid": [i.message() for i in d.invalid[:SHOWN_INVALID]],
            "images": d.images,
            "boxes": d.boxes - d.polygons,
            "polygons": d.polygons,
            "image_level_rows": d.image_level_rows,
            "labels": d.labels,
            "datasets": sorted(d.datasets),
            "grouping": self.grouping,
            "grouping_temp_bytes": self.temp_bytes,
            "images_existing": self.existing,
            "estimate": None
            if est is None
            else {
                "requests": est.requests,
                "requests_by_method": est.requests_by_method,
                "rps": est.rps,
                "seconds": round(est.seconds, 1),
                "assumptions": list(est.assumptions),
            },
            "notes": list(self.notes),
        }


def _needed_scopes(datasets: set[str], into: set[str], version: bool) -> dict[str, str]:
    """The scopes the upload's calls need, with the call needing each: ``datasets`` the data
    names (made if missing), ``into`` every dataset the inputs go into (existing inputs
    join them)."""
    calls = ["PostInputs", "ListInputs", "PatchInputs", "PostAnnotations"]
    if datasets:
        calls.append("PostDatasets")
    if into:
        calls.append("PostDatasetInputs")
    if version:
        calls.append("PostDatasetVersions")
    needed: dict[str, str] = {}
    for call in calls:
        needed.setdefault(CALL_SCOPES[call], call)
    return needed


def _may(scopes: list[str], scope: str) -> bool:
    return ALL_SCOPES in scopes or scope in scopes


async def _app_checks(client: Client, config: Config, plan: Plan) -> bool:
    """Credentials, app and scopes, from one MyScopes; False when the service refused."""
    try:
        reply = await client.call("MyScopes", service_pb2.MyScopesRequest())
    except ClarifaiError as exc:
        name = "app" if exc.code == sc.CONN_DOES_NOT_EXIST else "credentials"
        plan.checks.append(Check(name, False, str(exc)))
        return False
    if reply.status.code != sc.SUCCESS:
        plan.checks.append(
            Check("credentials", False, f"MyScopes: Clarifai answers {describe(reply.status)}")
        )
        return False
    kind = "personal access token" if config.pat else "API key"
    plan.checks.append(Check("credentials", True, f"the {kind} is accepted"))
    app = reply.app
    owner = f" of user {app.user_id}" if app.user_id else ""
    plan.checks.append(Check("app", True, f"the app {app.id or config.app_id}{owner} exists"))
    plan.scopes = list(reply.scopes)
    return True


def _scope_check(plan: Plan, needed: dict[str, str]) -> None:
    missing = [
        f"{scope} ({call})" for scope, call in needed.items() if not _may(plan.scopes, scope)
    ]
    if missing:
        plan.checks.append(
            Check(
                "scopes",
                False,
                f"the key lacks the scope(s) an upload needs: {', '.join(missing)}; create a key "
                f"with {', '.join(needed)}",
            )
        )
    else:
        plan.checks.append(Check("scopes", True, f"the key has {', '.join(needed)}"))


async def _app_datasets(client: Client) -> set[str]:
    """Every dataset id of the app (ListDatasets, a thousand a page)."""
    found: set[str] = set()
    for page in range(1, _DATASET_PAGES + 1):
        request = service_pb2.ListDatasetsRequest(page=page, per_page=1000)
        reply = await client.call("ListDatasets", request)
        if reply.status.code != sc.SUCCESS:
            raise ClarifaiError(
                f"ListDatasets: Clarifai answers {describe(reply.status)}",
                code=reply.status.code,
                description=reply.status.description,
            )
        found.update(d.id for d in reply.datasets)
        if len(reply.datasets) < 1000:
            break
    return found


async def _dataset_checks(client: Client, config: Config, plan: Plan) -> None:
    named = plan.data.datasets
    wanted = sorted(named | ({config.dataset_id} if config.dataset_id else set()))
    if not wanted:
        return
    if not _may(plan.scopes, READ_SCOPES["ListDatasets"]):
        plan.notes.append(
            f"datasets not checked: the key lacks {READ_SCOPES['ListDatasets']} (ListDatasets), "
            "which the upload itself does not need"
        )
        return
    held = await _app_datasets(client)
    for dataset_id in wanted:
        if dataset_id in held:
            plan.checks.append(Check(f"dataset {dataset_id}", True, f"dataset {dataset_id} exists"))
        elif dataset_id in named:
            plan.checks.append(
                Check(
                    f"dataset {dataset_id}",
                    True,
                    f"dataset {dataset_id} does not exist: the upload makes it "
                    f"({CALL_SCOPES['PostDatasets']})",
                )
            )
        else:
            plan.checks.append(
                Check(
                    f"dataset {dataset_id}",
                    False,
                    f"dataset {dataset_id} (--dataset-id) does not exist in the app: every "
                    "input would fail; make it first (the upload makes only the datasets the "
                    "data names)",
                )
            )


async def _grouping(data: DatasetPath, tmp_dir: str | None, plan: Plan) -> None:
    """Whether the rows must be grouped on disk first, the temp space it takes, and
    whether the temp folder has it."""
    kind = detect(data.path, data.options.format)
    if kind == "csv":
        async with CsvSource(data) as src:
            validator = src.validator
            assert validator is not None
            scan = await scan_order(
                data.path, validator.image_index, validator.id_index, header_line=src.header_line
            )
        if scan.grouped:
            return
        plan.grouping, plan.temp_bytes = "disk", scan.size
    elif kind == "coco":  # annotations come by category: gathered by image on disk
        plan.grouping, plan.temp_bytes = "disk", data.path.stat().st_size
    else:
        return
    folder = Path(tmp_dir) if tmp_dir else Path(tempfile.gettempdir())
    probe = folder if folder.exists() else folder.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        plan.notes.append(f"the free space in {folder} could not be read")
        return
    mb = plan.temp_bytes / 1e6
    if free < plan.temp_bytes:
        plan.checks.append(
            Check(
                "temp space",
                False,
                f"grouping the rows by image needs about {mb:,.1f} MB in {folder}, which has "
                f"{free / 1e6:,.1f} MB free; free some space or give another folder with "
                "--tmp-dir",
            )
        )
    else:
        plan.checks.append(
            Check("temp space", True, f"about {mb:,.1f} MB of temp files in {folder}")
        )


def _data_checks(config: Config, plan: Plan) -> None:
    d = plan.data
    if d.invalid:
        first = "; ".join(i.message() for i in d.invalid[:SHOWN_INVALID])
        more = (
            f" and {len(d.invalid) - SHOWN_INVALID:,} more"
            if len(d.invalid) > SHOWN_INVALID
            else ""
        )
        says = f"{len(d.invalid):,} invalid row(s): {first}{more}"
        if config.strict:
            plan.checks.append(Check("data", False, f"{says}; with --strict nothing is sent"))
    if config.strict and d.warnings:
        plan.checks.append(Check("data", False, f"{d.warnings[0]}; with --strict nothing is sent"))
    if not d.valid:
        plan.notes.append("no valid row: the upload would send nothing")


async def _existing(client: Client, rows: RowSource, size: int) -> int:
    """Images of ``rows`` (grouped by image) the app holds, ``size`` ids a ListInputs."""
    found = 0
    ids: list[str] = []
    last = ""
    async for batch in rows.batches():
        for item in batch:
            if isinstance(item, InvalidRow) or item.input_id == last:
                continue
            last = item.input_id
            ids.append(last)
            if len(ids) == size:
                found += len(await read_inputs(client, ids))
                ids = []
    if ids:
        found += len(await read_inputs(client, ids))
    return found


async def make_plan(
    client: Client,
    config: Config,
    data: DatasetPath,
    rows: RowSource | None = None,
    *,
    dataset_version: bool = False,
) -> Plan:
    """The plan of uploading ``data`` with ``config`` (see the module's docs); with
    ``rows`` (the data opened grouped by image), also how many images the app holds."""
    plan = Plan(source=data.path)
    plan.data = await validate_path(data)
    _data_checks(config, plan)
    await _grouping(data, config.tmp_dir, plan)
    summary = plan.data
    named = summary.datasets | ({config.dataset_id} if config.dataset_id else set())
    if await _app_checks(client, config, plan):
        _scope_check(plan, _needed_scopes(summary.datasets, named, dataset_version))
        await _dataset_checks(client, config, plan)
        if rows is not None:
            if _may(plan.scopes, READ_SCOPES["ListInputs"]):
                plan.existing = await _existing(client, rows, config.check_batch_size)
            else:
                plan.notes.append(
                    "the images already in the app were not counted: the key lacks Inputs:Get"
                )
    # the service's answers first, then what the data needs here
    plan.checks.sort(key=lambda c: _ORDER.get(c.name.split()[0], len(_ORDER)))
    plan.estimate = estimate_upload(
        summary.images,
        summary.boxes,
        rps=config.rps,
        datasets=len(summary.datasets),
        dataset_versions=len(named) if dataset_version else 0,
        batch_size=config.batch_size,
        annotation_batch_size=config.annotation_batch_size,
        check_batch_size=config.check_batch_size,
        processing_s=config.processing_estimate,
    )
    return plan
