"""One bench row measured N times, each in a fresh process (as `edgekit bench` measures rows): the
spread of its p50 across tries, which MLPerf wants within 5% over 5 tries on a quiet machine. The
output states the CPU, its int8-relevant flags and the load average, because the spread means
nothing without them.

    python bench/repeat_row.py MODEL [--backend litert] [--threads 1] [--tries 5] [--max-time 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_CV = 0.05  # MLPerf mobile: results repeat within 5% over 5 tries


def loads() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    from edgekit.benchmark.results import machine
    from edgekit.benchmark.runner import Benchmark, BenchSettings
    from edgekit.runtime import hostinfo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tries", type=int, default=5)
    ap.add_argument("--max-time", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "repeat_row.json")
    args = ap.parse_args()
    host = machine()
    cpu = host["cpu"]
    wanted = hostinfo.X86_FLAGS if "avx" in cpu["flags"] or "sse4_2" in cpu["flags"] else hostinfo.ARM_FLAGS
    absent = [f for f in wanted if f not in cpu["flags"]]
    before = loads()
    print(
        f"host: {cpu['model']}, {cpu['cores']} cores ({cpu['usable_cores']} usable to this process); "
        f"flags {' '.join(cpu['flags']) or 'none'}; absent {' '.join(absent) or 'none'}; "
        f"nice {os.nice(0)}; load average (1, 5, 15 min) {before} at the start"
    )
    rows = [
        Benchmark(
            [args.model],
            BenchSettings(backends=(args.backend,), threads=(args.threads,), max_time=args.max_time),
        )
        .run()
        .rows[0]
        for _ in range(args.tries)
    ]
    after = loads()
    ok = [r for r in rows if r.error is None]
    p50 = [r.p50_ms for r in ok]
    cv = statistics.stdev(p50) / statistics.fmean(p50) if len(p50) > 1 else float("nan")
    for i, r in enumerate(rows, 1):
        if r.error:
            print(f"try {i}: failed: {r.error}")
            continue
        print(
            f"try {i}: p50 {r.p50_ms:.4f} ms  CI ±{100 * (r.ci_high_ms - r.ci_low_ms) / 2 / r.p50_ms:.1f}%  "
            f"runs {r.runs}  stable {r.stable}  load {r.load_start}->{r.load_end}"
        )
    name = (ok or rows)[0].name
    verdict = "within" if cv <= TARGET_CV else "above"
    print(
        f"{name}: p50 over {len(p50)} tries: mean {statistics.fmean(p50) if p50 else float('nan'):.4f} ms, "
        f"CV {100 * cv:.1f}% ({verdict} the {100 * TARGET_CV:.0f}% target); load average {before} -> {after} "
        f"on {cpu['cores']} cores"
    )
    doc = {
        "machine": host,
        "cv_of_p50": cv,
        "target_cv": TARGET_CV,
        "load_average_start": before,
        "load_average_end": after,
        "nice": os.nice(0),
        "results": [asdict(r) for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
