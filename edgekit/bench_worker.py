"""One `edgekit bench` row in a fresh process: `python -m edgekit.bench_worker` reads the row's
spec as JSON on stdin and writes `{"row": ...}` or `{"error": "one sentence"}` as the last line of
stdout. A process per row makes the peak memory that row's own and keeps one row from warming the
caches, allocators or thread pools of the next."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def main() -> int:
    from edgekit.bench_table import RowSpec, measure_row
    from edgekit.errors import EdgekitError, first_line

    try:
        spec = RowSpec(**json.loads(sys.stdin.read()))
        row = measure_row(spec)
    except EdgekitError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    except Exception as e:  # a library's own error on a file it cannot run: the row's reason
        print(json.dumps({"error": f"{type(e).__name__}: {first_line(e)}"}))
        return 1
    print(json.dumps({"row": asdict(row)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
