"""How a dataset path is read: :class:`FormatOptions`, and :class:`DatasetPath` that carries them.

``ingest upload PATH`` takes, besides the seed CSV, a COCO JSON file, a YOLO dataset,
a Pascal VOC folder, a LabelMe folder (or file) and a CVAT for images XML file (or its
folder) (:mod:`ingest.source.factory` recognises which and opens its reader). Options
travel with the path as a :class:`DatasetPath` (an ``os.PathLike``), so every entry point
that takes a path takes one::

    await ing.run(DatasetPath("instances_val2017.json", regions="both"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError, SourceError

__all__ = ["CLASS_NAMES", "CONCEPT_IDS", "REGIONS", "DatasetPath", "FormatOptions", "require"]

REGIONS = ("boxes", "polygons", "both")
"""What COCO segmentations, YOLO segment rows and LabelMe and CVAT polygons become."""

CONCEPT_IDS = ("ids", "names")
"""What the concept cells of a CSV hold."""

CLASS_NAMES = ("names", "numbers")
"""What a YOLO dataset's concepts are: its class names, or its class numbers."""


@dataclass(frozen=True, slots=True)
class FormatOptions:
    """How a dataset path is read.

    ``format``: ``csv``, ``labelme``, ``coco``, ``yolo``, ``voc``, ``cvat``, ``classes``
    (class folders), ``sdk-csv`` or ``None`` (recognised from the path;
    :data:`~ingest.source.factory.FORMATS` lists them, and opening refuses any other).
    ``regions``: ``boxes`` (default), ``polygons`` or ``both``: which regions COCO
    segmentations, YOLO segment rows and LabelMe and CVAT polygons become (a COCO
    annotation without a polygon, such as a crowd annotation in RLE, keeps its box; so does
    a LabelMe or CVAT box). ``images``: the folder of COCO's and CVAT's local images
    (default: the usual folders beside the annotation file).
    ``concept_ids``: ``ids`` (concept cells of a CSV hold ids) or ``names`` (they hold
    names, made ids the way the formats' class names are). ``dataset_per_split``
    (YOLO, VOC, CVAT, class folders): each split's inputs also go into a dataset named
    after it, made when the app lacks it. ``class_names`` and ``split``: below.
    """

    format: str | None = None
    regions: str = "boxes"
    images: str | None = None
    concept_ids: str = "ids"
    dataset_per_split: bool = False
    """YOLO, VOC, CVAT, class folders: put each split's inputs into a dataset of the split's
    name (train, val...; a CVAT subset)."""
    class_names: str = "names"
    """YOLO: ``names`` (the yaml's or classes.txt's; a dataset without them is refused)
    or ``numbers`` (the class numbers are the concepts)."""
    split: str | None = None
    """YOLO, VOC, CVAT and class folders: upload only this split (``train``, ``val``...; a
    CVAT subset); every row keeps the position it has when every split is read, so one
    journal serves them all."""

    def __post_init__(self) -> None:
        if self.regions not in REGIONS:
            raise ConfigError(f"regions must be one of {', '.join(REGIONS)}, not {self.regions!r}")
        if self.concept_ids not in CONCEPT_IDS:
            raise ConfigError(f"concept ids must be 'ids' or 'names', not {self.concept_ids!r}")
        if self.class_names not in CLASS_NAMES:
            raise ConfigError(f"class names must be 'names' or 'numbers', not {self.class_names!r}")

    @property
    def boxes(self) -> bool:
        return self.regions != "polygons"

    @property
    def polygons(self) -> bool:
        return self.regions != "boxes"


class DatasetPath(os.PathLike[str]):
    """A data path with the options it is read with (usable wherever a path is)."""

    def __init__(
        self, path: str | os.PathLike[str], options: FormatOptions | None = None, **kw: Any
    ) -> None:
        self.path = Path(path)
        self.options = replace(options or FormatOptions(), **kw)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"DatasetPath({str(self.path)!r}, {self.options!r})"

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> DatasetPath:
        """``path`` as a :class:`DatasetPath` (itself if it is one; default options if not)."""
        return path if isinstance(path, DatasetPath) else cls(path)


def require(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path`; :class:`SourceError` when nothing is there."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{path}: no such file or folder")
    return p
