"""One bench row measured N times, each in a fresh process (as `edgekit bench` measures rows): the
spread of its p50 across tries, which MLPerf wants within 5% over 5 tries on a quiet machine.

    python bench/repeat_row.py MODEL [--backend litert] [--threads 1] [--tries 5] [--max-time 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from edgekit.bench_table import bench_models, machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tries", type=int, default=5)
    ap.add_argument("--max-time", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "repeat_row.json")
    args = ap.parse_args()
    rows = [
        bench_models([args.model], [args.backend], threads=[args.threads], max_time=args.max_time)[0]
        for _ in range(args.tries)
    ]
    p50 = [r.p50_ms for r in rows if r.error is None]
    cv = statistics.stdev(p50) / statistics.fmean(p50) if len(p50) > 1 else float("nan")
    for i, r in enumerate(rows, 1):
        print(
            f"try {i}: p50 {r.p50_ms:.4f} ms  CI ±{100 * (r.ci_high_ms - r.ci_low_ms) / 2 / r.p50_ms:.1f}%  "
            f"runs {r.runs}  load {r.load_start}->{r.load_end}"
        )
    print(
        f"{rows[0].name}: p50 over {len(p50)} tries: mean {statistics.fmean(p50):.4f} ms, CV {100 * cv:.1f}%"
    )
    doc = {"machine": machine(), "cv_of_p50": cv, "results": [asdict(r) for r in rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
