"""The timing core of `edgekit bench`: warm-up, then timed runs until the median is known to within
a stated precision (or a time limit), with statistics that hold on a busy machine.

The stopping rule is the one a reader can check: the 95% confidence interval of the median, taken
from the order statistics themselves (the count of samples below the true median is binomial(n, ½),
so no assumption about the shape of the latency distribution is made), must lie within ±2.5% of the
median. A fixed `runs` count is honoured exactly, as `benchmark_model --num_runs` does."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from edgekit.runtime.quantiles import percentiles

CONFIDENCE = 0.95
PRECISION = 0.025  # stop when the median's interval is within ±2.5% of it
MIN_RUNS = 50  # a smaller sample says little about p90, whatever its interval
MAX_TIME = 10.0  # seconds of timed runs per measurement unless told otherwise
MAX_SAMPLES = 10_000  # raw samples kept in a result (evenly thinned beyond this)


@dataclass(frozen=True)
class Latency:
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    std_ms: float = 0.0
    cv: float = 0.0  # std / mean: the spread a reader should expect between two runs
    ci_low_ms: float = 0.0  # the 95% interval of the median
    ci_high_ms: float = 0.0
    stable: bool = False  # the interval met the precision before the time ran out
    seconds: float = 0.0  # wall time of the timed runs
    samples_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def ci_halfwidth(self) -> float:
        """The larger side of the median's interval, as a fraction of the median (inf when unknown)."""
        if self.p50_ms <= 0 or self.ci_high_ms <= 0:
            return math.inf
        return max(self.p50_ms - self.ci_low_ms, self.ci_high_ms - self.p50_ms) / self.p50_ms

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["samples_ms"] = list(self.samples_ms)
        return d


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (lo, hi) of the order statistics that bracket the median with at least
    `confidence` for any continuous distribution; None when `n` is too small for that.

    P(x_(k) <= median <= x_(n-k+1)) = 1 - 2 P(B <= k-1) with B ~ binomial(n, 1/2): the largest k
    whose tail is small enough."""
    alpha = (1.0 - confidence) / 2
    # the binomial(n, 1/2) cdf, built up term by term in log space (exact for any n)
    log_half_n = -n * math.log(2.0)
    cdf, k = 0.0, 0
    log_pmf = log_half_n  # P(B = 0)
    while k <= n // 2:
        p = math.exp(log_pmf)
        if cdf + p > alpha:
            break
        cdf += p
        k += 1
        log_pmf += math.log((n - k + 1) / k)
    # cdf = P(B <= k-1) <= alpha: ranks k and n-k+1
    if k < 1:
        return None
    return k, n - k + 1


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The distribution-free interval of the median (None for fewer than 6 values at 95%)."""
    ranks = median_ci_ranks(len(values), confidence)
    if ranks is None:
        return None
    ordered = sorted(values)
    return float(ordered[ranks[0] - 1]), float(ordered[ranks[1] - 1])


def precise_enough(values: Sequence[float], precision: float = PRECISION) -> bool:
    """Whether the median's 95% interval lies within ±`precision` of the median."""
    ci = median_ci(values)
    if ci is None:
        return False
    med = percentiles(values, [50])[0]
    return med > 0 and max(med - ci[0], ci[1] - med) <= precision * med


def summarize(seconds: Sequence[float], *, stable: bool = False, elapsed: float = 0.0) -> Latency:
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = percentiles(ms, [50, 90, 99])
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    ci = median_ci(ms.tolist()) or (0.0, 0.0)
    kept = ms if len(ms) <= MAX_SAMPLES else ms[np.linspace(0, len(ms) - 1, MAX_SAMPLES).astype(int)]
    return Latency(
        runs=len(ms),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=mean,
        min_ms=float(ms.min()),
        std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        ci_low_ms=ci[0],
        ci_high_ms=ci[1],
        stable=stable,
        seconds=elapsed,
        samples_ms=tuple(round(float(v), 5) for v in kept),
    )


@dataclass(frozen=True)
class StopRule:
    """When timed runs end: after exactly `runs` when it is given; else once the median's interval
    is within ±`precision` (after at least `min_runs`), or when `max_time` seconds have passed."""

    runs: int | None = None
    max_time: float = MAX_TIME
    min_runs: int = MIN_RUNS
    precision: float = PRECISION
    warmup: int = 10
    warmup_time: float = 0.2  # and at least this long: caches, lazy allocations, CPU clocks settle
    min_time: float = 0.5  # timed runs last at least this long (or max_time), as benchmark_model's min_secs

    def __post_init__(self) -> None:
        if self.runs is not None and self.runs < 1:
            raise ValueError("runs must be at least 1")
        if self.max_time <= 0:
            raise ValueError("max_time must be positive")

    def done(self, samples: Sequence[float], elapsed: float) -> tuple[bool, bool]:
        """(stop now, the precision was met)."""
        if self.runs is not None:
            return len(samples) >= self.runs, False
        if elapsed >= self.max_time:
            return True, False
        if (
            len(samples) >= self.min_runs
            and elapsed >= min(self.min_time, self.max_time)
            and precise_enough(samples, self.precision)
        ):
            return True, True
        return False, False


def measure(fn: Callable[[], object], rule: StopRule) -> Latency:
    """Warm `fn` up, then time it call by call until `rule` says stop."""
    clock = time.perf_counter
    t_warm = clock()
    n = 0
    while n < rule.warmup or clock() - t_warm < rule.warmup_time:
        fn()
        n += 1
        if clock() - t_warm > rule.max_time:  # a slow model: its warm-up is its first runs
            break
    times: list[float] = []
    start = clock()
    check_every = 1
    stable = False
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        times.append(t1 - t0)
        # the interval costs a sort: checked on a doubling schedule, capped, so it stays cheap
        if len(times) % check_every == 0 or rule.runs is not None or t1 - start >= rule.max_time:
            stop, stable = rule.done(times, t1 - start)
            if stop:
                break
            check_every = min(max(1, len(times) // 8), 500)
    return summarize(times, stable=stable, elapsed=clock() - start)


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> Latency:
    """Call `fn` `warmup` times untimed, then `runs` times, each timed on its own."""
    return measure(fn, StopRule(runs=runs, warmup=warmup, warmup_time=0.0))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each call, timed one call at a time, the calls taking turns at going first (the
    order rotates every round), so that drift and neighbours' load fall on all of them alike."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for i in range(runs):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            fn = calls[name]
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


SIGNIFICANCE = 0.05  # a difference with a larger p-value is shown as "not significant" (≈)


def rank(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties given their average rank, and the size of every group of ties."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # a new group starts wherever the sorted value changes
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    average = starts + (sizes + 1) / 2.0  # the mean of ranks start+1 .. start+size
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(average, sizes)
    return ranks, sizes


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of `a`, two-sided p) of the Mann-Whitney U test that `a` and `b` come from one distribution,
    by the normal approximation with the tie correction and the continuity correction (scipy's
    `mannwhitneyu(a, b, method="asymptotic")`); p is 1.0 when either side is empty or all are tied.

    It assumes nothing about the shape of the latency distribution (a long right tail, two modes),
    which is why pyperf and Google Benchmark's compare.py use it before calling one faster."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    n = n1 + n2
    ranks, ties = rank(np.concatenate([x, y]))
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)  # the larger U: the two-sided tail is twice its upper tail
    tie_term = float((ties**3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0:
        return u1, 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var)
    return u1, min(1.0, max(0.0, math.erfc(z / math.sqrt(2.0))))
