"""The command line's options for reading a dataset (``upload`` and ``validate``)."""

from __future__ import annotations

import argparse
from typing import Any

from ingest.source import FORMATS, REGIONS, FormatOptions

__all__ = ["add_format_arguments", "format_options"]


def add_format_arguments(container: Any) -> None:
    """Add the dataset-reading options to ``container``: a parser or an argument group."""
    container.add_argument(
        "--format",
        choices=FORMATS,
        help="what DATA is (default: from the path: *.json is COCO, data.yaml or a folder "
        "with images/ and labels/ YOLO, a folder with Annotations/ VOC, else CSV)",
    )
    container.add_argument(
        "--regions",
        choices=REGIONS,
        default="boxes",
        help="COCO segmentations and YOLO segment rows become boxes (default), polygons, or both",
    )
    container.add_argument(
        "--images",
        metavar="DIR",
        help="COCO: upload the local images under DIR instead of their URLs (default: "
        "URLs when the file has them, else images/ or <split>/ beside it)",
    )
    container.add_argument(
        "--concept-ids",
        choices=("ids", "names"),
        default="ids",
        help="CSV: concept cells hold ids (default) or names such as 'Traffic Light', made "
        "ids as the COCO loader does (traffic-light), the name kept",
    )
    container.add_argument(
        "--dataset-per-split",
        action="store_true",
        help="YOLO: also put each split's inputs into a dataset named after it (train, val...)",
    )


def format_options(ns: argparse.Namespace) -> FormatOptions:
    """The :class:`~ingest.source.FormatOptions` of parsed command-line options."""
    return FormatOptions(
        format=getattr(ns, "format", None),
        regions=getattr(ns, "regions", "boxes"),
        images=getattr(ns, "images", None),
        concept_ids=getattr(ns, "concept_ids", "ids"),
        dataset_per_split=getattr(ns, "dataset_per_split", False),
    )
