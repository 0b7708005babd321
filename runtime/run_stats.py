"""What a run did: items in, processed, dropped, skipped, reconnects, throughput, capture-to-result
latency and per-stage times. `RunStats` gathers them as the run goes; `summary(source)` is the
`RunSummary` that `edgekit run` prints at its end (one line for people, one JSON line for scripts)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.runtime.predictor import Prediction
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
        }
        if self.error:
            out["error"] = self.error
        return out

    def describe(self) -> str:
        """The summary as one line for people."""
        return describe_summary(self.to_dict())


class RunStats:
    """What a run did: items taken from the source, end-to-end latency (capture to result) and
    per-stage times, and the source's own counters, for the summary at the end."""

    def __init__(self) -> None:
        self.processed = 0
        self.latencies: list[float] = []
        self.stages: dict[str, list[float]] = {}
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
        self.latencies.append(done - item.t_capture)
        for stage, seconds in prediction.times.items():
            self.stages.setdefault(stage, []).append(seconds)
        # time between capture and the start of preprocessing: the item's wait for the model
        self.stages.setdefault("wait", []).append(
            max(0.0, done - item.t_capture - sum(prediction.times.values()))
        )

    def summary(self, source: Source) -> RunSummary:
        """Frames in, processed, dropped, skipped, reconnects, throughput, latency p50/p99, stage p50s."""

        def count(name: str, default: int = 0) -> int:  # live sources keep counters; others do not
            value = getattr(source, name, None)
            return value if isinstance(value, int) else default

        skipped = source.skipped
        frames_in = count("read", -1)
        if frames_in < 0:  # a file source hands over every item it reads
            frames_in = self.processed + skipped
        seconds = (self.last_result - self.first_capture) if self.processed else 0.0
        # sustained throughput: the rate results came out at, first to last
        between = (self.last_result - self.first_result) if self.processed > 1 else 0.0
        ms = np.asarray(self.latencies) * 1e3
        return RunSummary(
            frames_in=int(frames_in),
            processed=self.processed,
            dropped=count("dropped"),
            skipped=skipped,
            reconnects=count("reconnects"),
            seconds=round(seconds, 3),
            fps=round((self.processed - 1) / between, 2) if between > 0 else None,
            latency_ms={
                "p50": round(float(np.percentile(ms, 50)), 3) if ms.size else None,
                "p99": round(float(np.percentile(ms, 99)), 3) if ms.size else None,
            },
            stages_ms_p50={k: round(float(np.median(v)) * 1e3, 4) for k, v in self.stages.items() if v},
            error=getattr(source, "error", None) or None,
        )


def describe_summary(summary: dict[str, Any]) -> str:
    """A summary (as `RunSummary.to_dict()` gives it) as one line for people."""
    s = summary
    line = (
        f"{s['frames_in']} frames in, {s['processed']} processed, {s['dropped']} dropped, "
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
    return line
