"""The command line's options for reading a dataset, and the :class:`FormatOptions` they make."""

from __future__ import annotations

import argparse

from ingest.source import FORMATS, REGIONS, FormatOptions
from ingest.source.formats import CLASS_NAMES

__all__ = ["add_format_arguments", "format_options"]


def add_format_arguments(parser: argparse._ActionsContainer) -> None:
    """The command line's options for reading a dataset (``upload`` and ``validate``).

    ``parser`` is any argparse container: a parser, or an argument group of one.
    """
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="what DATA is (default: recognised from the path: a LabelMe .json file or a "
        "folder of them is LabelMe, any other .json is COCO, a .yaml, a folder with data.yaml "
        "or with images/ and labels/ is YOLO, a folder with Annotations/ is VOC, an .xml file "
        "or a folder with annotations.xml is CVAT, a folder of folders of images is class "
        "folders, a CSV with the official SDK's header is the SDK's CSV, anything else a CSV)",
    )
    parser.add_argument(
        "--regions",
        choices=REGIONS,
        default="boxes",
        help="COCO segmentations, YOLO segment rows and LabelMe and CVAT polygons (circles, "
        "ellipses and rotated boxes too) become boxes (default), polygons, or both",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="COCO: upload the local images under DIR (file_name) instead of their URLs "
        "(default: URLs when the file gives them, else images/ or <split>/ beside the file); "
        "CVAT: the images are DIR/<subset>/<name> or DIR/<name> (default: images/ beside "
        "the XML)",
    )
    parser.add_argument(
        "--concept-ids",
        choices=("ids", "names"),
        default="ids",
        help="CSV, the SDK's CSV: concept cells hold ids (default) or names such as "
        "'traffic light', made ids as the COCO loader does (lower case, other characters "
        "'-'); the name is kept as the concept's name",
    )
    parser.add_argument(
        "--class-names",
        choices=CLASS_NAMES,
        default="names",
        help="YOLO: the concepts are the class names (default: from the dataset's yaml, "
        "whatever its name, or classes.txt; a dataset without names is refused) or the class "
        "numbers",
    )
    parser.add_argument(
        "--split",
        metavar="NAME",
        help="YOLO, Pascal VOC, CVAT, class folders: read only this split (a YOLO yaml's "
        "train, val or test, or a folder under images/; a VOC ImageSets/Main/NAME.txt; a CVAT "
        "subset; a split folder holding class folders); every input carries its splits in its "
        "metadata either way",
    )
    parser.add_argument(
        "--dataset-per-split",
        action="store_true",
        help="YOLO, Pascal VOC, CVAT, class folders: put each split's inputs into a dataset "
        "named after the split (train, val, test; a CVAT subset), made when the app lacks it "
        "(a VOC image in "
        "several splits: the smallest, e.g. train rather than trainval)",
    )


def format_options(ns: argparse.Namespace) -> FormatOptions:
    """The :class:`FormatOptions` of parsed command-line options."""
    return FormatOptions(
        format=getattr(ns, "format", None),
        regions=getattr(ns, "regions", "boxes"),
        images=getattr(ns, "images", None),
        concept_ids=getattr(ns, "concept_ids", "ids"),
        dataset_per_split=getattr(ns, "dataset_per_split", False),
        class_names=getattr(ns, "class_names", "names"),
        split=getattr(ns, "split", None),
    )
