"""The CPU floor: only parse the CSV and build (and serialise) the request protos.

No validation beyond float parsing, no network, no event loop: what any client must
at least spend. ``python -m benchmarks.floor DATA.csv`` prints a JSON line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from collections.abc import Sequence

from clarifai_grpc.grpc.api import service_pb2


def floor(path: str) -> dict[str, float]:
    started = time.process_time()
    rows = inputs = boxes = 0
    req_in = service_pb2.PostInputsRequest()
    req_ann = service_pb2.PostAnnotationsRequest()
    last_url = None
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            rows += 1
            url = row["url"]
            iid = hashlib.blake2b(url.encode(), digest_size=16).hexdigest()
            if url != last_url:
                last_url = url
                inp = req_in.inputs.add()
                inp.id = iid
                inp.data.image.url = url
                if row.get("metadata"):
                    inp.data.metadata.update(json.loads(row["metadata"]))
                inputs += 1
                if len(req_in.inputs) == 128:
                    req_in.SerializeToString()
                    req_in = service_pb2.PostInputsRequest()
            if row["left_col"]:
                ann = req_ann.annotations.add()
                ann.input_id = iid
                region = ann.data.regions.add()
                bb = region.region_info.bounding_box
                bb.left_col = float(row["left_col"])
                bb.top_row = float(row["top_row"])
                bb.right_col = float(row["right_col"])
                bb.bottom_row = float(row["bottom_row"])
                for name in filter(None, row.get("pos_concepts", "").split("|")):
                    c = region.data.concepts.add()
                    c.id = c.name = name
                    c.value = 1.0
                boxes += 1
                if len(req_ann.annotations) == 128:
                    req_ann.SerializeToString()
                    req_ann = service_pb2.PostAnnotationsRequest()
    return {
        "rows": rows,
        "inputs": inputs,
        "boxes": boxes,
        "cpu_s": time.process_time() - started,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print(json.dumps(floor(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
