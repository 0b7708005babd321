"""The timing core of `edgekit bench`: load, first inference, then N timed runs after a warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(seconds: list[float]) -> Latency:
    ms = np.asarray(seconds) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Latency(len(ms), float(p50), float(p90), float(p99), float(statistics.fmean(ms)), float(ms.min()))


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> Latency:
    """Call `fn` `warmup` times untimed, then `runs` times, each timed on its own."""
    for _ in range(warmup):
        fn()
    times = []
    clock = time.perf_counter
    for _ in range(runs):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return summarize(times)


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0
