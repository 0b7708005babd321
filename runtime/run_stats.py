"""What a run did: items in, processed, dropped, skipped, reconnects, throughput, capture-to-result
latency and per-stage times. `RunStats` gathers them as the run goes; `summary(source)` is the
`RunSummary` that `edgekit run` prints at its end (one line for people, one JSON line for scripts)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.runtime.predictor import Prediction
from edgekit.runtime.quantiles import percentiles
from edgekit.runtime.sources import Item, Source


@dataclass(frozen=True)
class RunSummary:
    """The end of a run in numbers. `to_dict()` is the `{"summary": ...}` JSON line of `--json`;
    `describe()` is the line printed for people."""

    frames_in: int
    processed: int
    dropped: int
    skipped: int
    reconnects: int
    seconds: float
    fps: float | None  # results per second, first to last (None with fewer than two)
    latency_ms: dict[str, float | None] = field(default_factory=dict)  # p50, p99, capture to result
    stages_ms_p50: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why a live source ended early
    failed: int = 0  # items read but given no result (the model's outputs were not finite)
    failures: tuple[str, ...] = ()  # the first few of them, with why
    unit: str = "frames"  # what an item is called for people: "lines" of text, "clips" of audio
    source: str = ""  # which source, in a summary of one of several
    feeds: tuple[RunSummary, ...] = ()  # one summary per source, when there were several

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frames_in": self.frames_in,
            "processed": self.processed,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "reconnects": self.reconnects,
            "seconds": self.seconds,
            "fps": self.fps,
            "latency_ms": dict(self.latency_ms),
            "stages_ms_p50": dict(self.stages_ms_p50),
            "failed": self.failed,
        }
        if self.failures:
            out["failures"] = list(self.failures)
        if self.error:
            out["error"] = self.error
        if self.unit != "frames":
            out["unit"] = self.unit
        if self.source:
            out["source"] = self.source
        if self.feeds:
            out["feeds"] = [f.to_dict() for f in self.feeds]
        return out

    def describe(self) -> str:
        """The summary as one line for people."""
        return describe_summary(self.to_dict())


class Reservoir:
    """A fixed-size uniform sample of a stream of numbers (Vitter's algorithm R), for percentiles
    of a run of any length in constant memory: the first `size` values are all kept (exact
    percentiles for shorter runs); after that each new value replaces a random one with
    probability size/n. With 4,096 kept, a percentile's rank is within about +-0.3 points of the
    true one (95%: 2 * sqrt(p * (1 - p) / 4096) for p99), whatever the length of the run."""

    def __init__(self, size: int = 4096, seed: int = 0) -> None:
        self.values = np.empty(size, dtype=np.float64)
        self.seen = 0
        self._seed = seed  # seeded: the same run gives the same summary
        self._rng: np.random.Generator | None = None  # made when first needed: numpy.random's
        # import is 10-20 ms of every `edgekit run`, and a run shorter than `size` never draws

    def add(self, value: float) -> None:
        size = self.values.size
        if self.seen < size:
            self.values[self.seen] = value
        else:
            if self._rng is None:
                self._rng = np.random.default_rng(self._seed)
            j = int(self._rng.integers(0, self.seen + 1))
            if j < size:
                self.values[j] = value
        self.seen += 1

    def sample(self) -> np.ndarray:
        return self.values[: min(self.seen, self.values.size)]

    def percentile(self, q: float) -> float | None:
        """The `q`th percentile of the values kept; None before the first."""
        return next(iter(percentiles(self.sample(), [q])), None)


class RunStats:
    """What a run did: items taken from the source, end-to-end latency (capture to result) and
    per-stage times, and the source's own counters, for the summary at the end. Its memory is
    fixed: times go to reservoirs, not to lists that grow by a frame's worth each frame."""

    MAX_REASONS = 10  # failure reasons kept for the summary; the count goes on

    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0  # items the model could not give a result for (non-finite outputs)
        self.failure_reasons: list[str] = []
        self.latencies = Reservoir()
        self.stages: dict[str, Reservoir] = {}
        self.first_capture: float | None = None
        self.first_result: float | None = None
        self.last_result: float | None = None

    def add(self, item: Item, prediction: Prediction) -> None:
        """Record one processed item."""
        done = prediction.done or time.perf_counter()
        self.processed += 1
        if self.first_capture is None:
            self.first_capture, self.first_result = item.t_capture, done
        self.last_result = done
        self.latencies.add(done - item.t_capture)
        for stage, seconds in prediction.times.items():
            self._stage(stage).add(seconds)
        # time between capture and the start of preprocessing: the item's wait for the model
        self._stage("wait").add(max(0.0, done - item.t_capture - sum(prediction.times.values())))

    def fail(self, item: Item, reason: str) -> None:
        """Record an item that gave no result; the run goes on."""
        self.failed += 1
        if len(self.failure_reasons) < self.MAX_REASONS:
            self.failure_reasons.append(f"{item.name}: {reason}")

    def _stage(self, name: str) -> Reservoir:
        found = self.stages.get(name)
        if found is None:
            found = self.stages[name] = Reservoir(seed=len(self.stages) + 1)
        return found

    def summary(self, source: Source) -> RunSummary:
        """Frames in, processed, dropped, skipped, reconnects, throughput, latency p50/p99, stage p50s."""

        def count(name: str, default: int = 0) -> int:  # live sources keep counters; others do not
            value = getattr(source, name, None)
            return value if isinstance(value, int) else default

        skipped = source.skipped
        frames_in = count("read", -1)
        if frames_in < 0:  # a file source hands over every item it reads
            frames_in = self.processed + self.failed + skipped
        seconds = (self.last_result - self.first_capture) if self.processed else 0.0
        # sustained throughput: the rate results came out at, first to last
        between = (self.last_result - self.first_result) if self.processed > 1 else 0.0
        p50, p99 = self.latencies.percentile(50), self.latencies.percentile(99)
        return RunSummary(
            frames_in=int(frames_in),
            processed=self.processed,
            dropped=count("dropped"),
            skipped=skipped,
            reconnects=count("reconnects"),
            seconds=round(seconds, 3),
            fps=round((self.processed - 1) / between, 2) if between > 0 else None,
            latency_ms={
                "p50": round(p50 * 1e3, 3) if p50 is not None else None,
                "p99": round(p99 * 1e3, 3) if p99 is not None else None,
            },
            stages_ms_p50={k: round(v.percentile(50) * 1e3, 4) for k, v in self.stages.items() if v.seen},
            error=getattr(source, "error", None) or None,
            failed=self.failed,
            failures=tuple(self.failure_reasons),
            unit=UNITS.get(getattr(source, "kind", ""), "frames"),
        )


# what the items of a source are called in the summary line, by the source's kind (the JSON keeps
# `frames_in` for every source, so scripts read one key)
UNITS = {"text": "lines", "audio": "clips"}


def describe_summary(summary: dict[str, Any]) -> str:
    """A summary (as `RunSummary.to_dict()` gives it) as one line for people."""
    s = summary
    line = (
        f"{s['frames_in']} {s.get('unit', 'frames')} in, {s['processed']} processed, {s['dropped']} dropped, "
        f"{s['skipped']} skipped, {s['reconnects']} reconnects in {s['seconds']:.2f} s"
    )
    if s["fps"]:
        line += f" ({s['fps']:.1f} fps)"
    lat = s["latency_ms"]
    if lat["p50"] is not None:
        line += f"; latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms (capture to result)"
    if s["stages_ms_p50"]:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in s["stages_ms_p50"].items())
        line += f"; p50 ms: {parts}"
    if s.get("failed"):
        first = s.get("failures") or ["?"]
        line += f"; {s['failed']} failed (first: {first[0]})"
    return line
