"""Percentiles, the one implementation: of a bench's timed runs (`timing`) and of a run's reservoirs
(`run_stats`). A module of its own so that `edgekit run` gets it without the bench's machinery."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles(values: Sequence[float] | np.ndarray, qs: Sequence[float]) -> list[float]:
    """Percentiles by linear interpolation between order statistics (np.percentile's default, as
    `onnxruntime_perf_test` reports them), from a sort: np.percentile itself imports numpy.ma,
    10-20 ms of an `edgekit run` on one image. Empty `values` have none."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if not ordered.size:
        return []
    out = []
    for q in qs:
        at = q / 100 * (ordered.size - 1)
        lo = int(at)
        hi = min(lo + 1, ordered.size - 1)
        out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)))
    return out
