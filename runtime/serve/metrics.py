"""`/metrics`: the run in the Prometheus text format (version 0.0.4), one sample per source for
each counter, latency histograms per stage, and the viewers. Prometheus computes rates and
percentiles from these over any window; the page's own figures are over the last seconds."""

from __future__ import annotations

from typing import Any

from edgekit.runtime.serve.hub import BOUNDS, Histogram, Hub

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, **labels: object) -> None:
        shown = repr(float(value)) if isinstance(value, float) else str(int(value))
        self.lines.append(f"{name}{_labels(**labels) if labels else ''} {shown}")

    def histogram(self, name: str, hist: Histogram, **labels: object) -> None:
        counts, total = hist.snapshot()
        for bound, count in zip((*BOUNDS, "+Inf"), counts):
            self.sample(f"{name}_bucket", count, **labels, le=bound)
        self.sample(f"{name}_sum", float(total), **labels)
        self.sample(f"{name}_count", counts[-1], **labels)


# (metric, help, what it reads from a source's state)
COUNTERS: list[tuple[str, str, Any]] = [
    ("edgekit_frames_in_total", "Inputs read from the source.", lambda f: f.frames_in),
    ("edgekit_frames_processed_total", "Inputs the model gave results for.", lambda f: f.processed),
    (
        "edgekit_frames_dropped_total",
        "Inputs replaced by a newer one before the model took them.",
        lambda f: f.feed.dropped,
    ),
    ("edgekit_frames_skipped_total", "Inputs that could not be read.", lambda f: f.feed.skipped),
    (
        "edgekit_errors_total",
        "Inputs the model gave no usable result for (outputs not finite).",
        lambda f: f.failed,
    ),
    (
        "edgekit_source_reconnects_total",
        "Times the source dropped out and was reopened.",
        lambda f: f.feed.reconnects,
    ),
    ("edgekit_jpeg_encoded_total", "Frames encoded for viewers.", lambda f: f.encoded),
    (
        "edgekit_viewers_dropped_total",
        "Viewers let go for not taking frames within the stall bound.",
        lambda f: f.dropped_viewers,
    ),
    ("edgekit_viewers_refused_total", "Viewers refused (503) over --max-viewers.", lambda f: f.refused),
]


def prometheus_text(hub: Hub, results_readers: int) -> str:
    """The exposition of `hub` now."""
    out = _Text()
    info = hub.info
    out.family("edgekit_info", "gauge", "The model and where it runs (always 1).")
    out.sample(
        "edgekit_info",
        1,
        model=info.get("model", ""),
        task=info.get("task", ""),
        backend=info.get("backend", ""),
        device=info.get("device", ""),
        threads=info.get("threads", ""),
    )
    out.family("edgekit_up", "gauge", "1 while every source and the model run, else 0 (/healthz says why).")
    out.sample("edgekit_up", 0 if hub.problems() else 1)
    for name, help_, read in COUNTERS:
        out.family(name, "counter", help_)
        for f in hub.feeds:
            out.sample(name, read(f), feed=f.index, source=f.name)
    out.family("edgekit_viewers", "gauge", "Viewers of the source's stream now.")
    for f in hub.feeds:
        out.sample("edgekit_viewers", f.viewers, feed=f.index, source=f.name)
    out.family("edgekit_results_readers", "gauge", "Readers of /results now.")
    out.sample("edgekit_results_readers", results_readers)
    out.family("edgekit_latency_seconds", "histogram", "Capture to result.")
    for f in hub.feeds:
        out.histogram("edgekit_latency_seconds", f.latency, feed=f.index, source=f.name)
    out.family(
        "edgekit_stage_seconds", "histogram", "Time in each stage: preprocess, inference, postprocess."
    )
    for f in hub.feeds:
        for stage, hist in list(f.stages.items()):
            out.histogram("edgekit_stage_seconds", hist, feed=f.index, source=f.name, stage=stage)
    return "\n".join(out.lines) + "\n"
