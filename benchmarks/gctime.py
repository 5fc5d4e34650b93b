"""Time Python's cycle collector in a client: ``python -m benchmarks.gctime OUT.json MODULE ARGS``.

Runs ``python -m MODULE ARGS`` in this process with a ``gc.callbacks`` hook that adds up
the CPU seconds between each collection's start and stop, and writes them to OUT.json at
the end: ``{"gc_s": ..., "collections": [gen0, gen1, gen2]}``. The hook's own cost is two
``time.process_time()`` calls per collection.
"""

from __future__ import annotations

import gc
import json
import runpy
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out, module, rest = args[0], args[1], args[2:]
    spent = [0.0]
    collections = [0, 0, 0]
    began = [0.0]

    def hook(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            began[0] = time.process_time()
        else:
            spent[0] += time.process_time() - began[0]
            collections[int(info["generation"])] += 1

    gc.callbacks.append(hook)
    sys.argv = [module, *rest]
    code: object = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        gc.callbacks.remove(hook)
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"gc_s": round(spent[0], 3), "collections": collections}, fh)
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    raise SystemExit(main())
