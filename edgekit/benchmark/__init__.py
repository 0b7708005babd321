"""The benchmark: `Benchmark(files, BenchSettings(...)).run()` measures one row per file x backend x
device x threads x batch, each in its own child process, and gives a `BenchReport` (table, verdict,
result file); `compare` merges result files from several hosts.

    results.py   the row and its versioned JSON/CSV files (what hosts exchange)
    plan.py      which rows run here          measure.py   one row, in this process
    worker.py    one row in a child process   runner.py    the Benchmark object
    report.py    the table and p-values       verdict.py   what to ship on this host
    compare.py   results of several hosts in one table and chart
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.benchmark.results import BenchRow, load_result
    from edgekit.benchmark.runner import Benchmark, BenchReport, BenchSettings

__all__ = ["BenchReport", "BenchRow", "BenchSettings", "Benchmark", "load_result"]


def __getattr__(name: str):  # lazy: reading a result file needs none of the runtime
    if name in ("Benchmark", "BenchReport", "BenchSettings"):
        from edgekit.benchmark import runner

        return getattr(runner, name)
    if name in ("BenchRow", "load_result"):
        from edgekit.benchmark import results

        return getattr(results, name)
    raise AttributeError(name)
