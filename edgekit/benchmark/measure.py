"""One benchmark row, measured in this process (the child process a `Benchmark` starts for each row
calls `measure_row`): open the file once, time the bare call and the whole pipeline, and score the
task's metric on the card's held-out data where it can be had here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.benchmark.results import BenchRow
from edgekit.errors import ConfigError
from edgekit.runtime import hostinfo
from edgekit.runtime.files import ModelFile
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.scoring import evaluate
from edgekit.runtime.timing import StopRule, measure


def heldout_for(card: Any, data: str | None, limit: int | None, model: Path | None = None):
    """The held-out split named by the card (None when its dataset cannot be had here).

    The card's data reference is checked as `evaluate` checks it (a known name, or a path inside the
    `model`'s folder; with no `model`, names only), and never downloads: a device without the
    dataset still gets latency figures, quickly."""
    from edgekit.evaluate_file import card_dataset
    from edgekit.runtime.datasets import load_dataset

    try:
        name, source = card_dataset(card, model, data)
        split = load_dataset(name, source).heldout
    except Exception:
        if data:
            raise
        return None
    return split.head(limit)


@dataclass(frozen=True)
class RowSpec:
    """One row to measure: everything the child needs, as JSON."""

    model: str
    backend: str | None = None
    device: str = "auto"
    threads: int | None = None
    batch: int = 1
    runs: int | None = None
    max_time: float = 5.0
    warmup: int = 10
    data: str | None = None
    eval_samples: int | None = 1000
    evaluate: bool = True
    shapes: dict[str, list[int]] = field(default_factory=dict)
    profile: bool = False

    def rule(self) -> StopRule:
        return StopRule(runs=self.runs, max_time=self.max_time, warmup=self.warmup)


def _shaped_card(file: ModelFile, spec: RowSpec):
    """A tensor card made with the row's --shape values, for a file that carries no card."""
    if not spec.shapes:
        return None
    from edgekit.runtime.backends import open_model
    from edgekit.runtime.tasks.tensor import tensor_card

    if file.card is not None:
        raise ConfigError(f"--shape is for models with no card; {file.name} has one")
    with open_model(file, spec.backend, spec.threads, "cpu" if spec.device == "auto" else spec.device) as s:
        return tensor_card(s, spec.shapes)


def _batched(predictor: Predictor, feeds: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """The feeds of one input repeated to `batch` along the first axis, the session told to take
    them (one sentence when the model's batch is fixed)."""
    if batch == 1:
        return feeds
    out = [np.repeat(f, batch, axis=0) if f.shape and f.shape[0] == 1 else f for f in feeds]
    predictor.session.resize([f.shape for f in out])
    return out


def measure_row(spec: RowSpec) -> BenchRow:
    file = ModelFile.open(spec.model)
    path = file.path
    load_start = hostinfo.load_average()
    t0 = time.perf_counter()
    card = _shaped_card(file, spec)
    with Predictor(
        file, backend=spec.backend, threads=spec.threads, device=spec.device, card=card
    ) as predictor:
        load = time.perf_counter() - t0
        card, session = predictor.card, predictor.session
        heldout = None
        if spec.evaluate and card.task != "tensor" and spec.batch == 1:
            heldout = heldout_for(card, spec.data, spec.eval_samples, path)
        sample = heldout.x[0] if heldout is not None else predictor.task.blank_input()
        t1 = time.perf_counter()
        predictor(sample)
        first = time.perf_counter() - t1
        feeds = _batched(predictor, predictor.task.preprocess(sample), spec.batch)
        run = session.run
        rule = spec.rule()
        latency = measure(lambda: run(feeds), rule)
        pipeline = None
        if spec.batch == 1:
            short = StopRule(
                runs=None if rule.runs is None else max(5, rule.runs // 4),
                max_time=max(0.5, rule.max_time / 4),
                warmup=3,
            )
            pipeline = measure(lambda: predictor(sample), short).p50_ms
        scores = evaluate(predictor, heldout.x, heldout.y)["metrics"] if heldout is not None else {}
        metric, value = next(iter(scores.items()), (None, None))
        extra: dict[str, Any] = {"samples_ms": list(latency.samples_ms), "seconds": round(latency.seconds, 3)}
        if session.execution:
            extra["execution"] = session.execution
        if card.task == "tensor":
            extra["card"] = "inferred from the file's tensors (no edgekit card)"
        if spec.profile:
            extra["profile"] = session.profile(feeds)
        bar = card.parity.get("bar", {}) if isinstance(card.parity, dict) else {}
        row = BenchRow(
            model=str(path),
            backend=session.backend,
            device=session.device,
            format=card.format or path.suffix.lstrip("."),
            quantization=card.quantization,
            size_bytes=file.size,
            load_ms=load * 1e3,
            first_ms=first * 1e3,
            p50_ms=latency.p50_ms,
            p90_ms=latency.p90_ms,
            p99_ms=latency.p99_ms,
            mean_ms=latency.mean_ms,
            runs=latency.runs,
            threads=spec.threads,
            accuracy=scores.get("accuracy"),
            accuracy_samples=len(heldout) if heldout is not None else 0,
            extra=extra,
            metric=metric,
            metric_value=value,
            task=card.task,
            recipe=card.recipe,
            batch=spec.batch,
            providers=list(getattr(session, "providers", [])),
            std_ms=latency.std_ms,
            cv=latency.cv,
            ci_low_ms=latency.ci_low_ms,
            ci_high_ms=latency.ci_high_ms,
            stable=latency.stable,
            throughput=spec.batch * 1e3 / latency.mean_ms if latency.mean_ms > 0 else 0.0,
            pipeline_p50_ms=pipeline,
            bar_points=bar.get("max_metric_drop_points") if isinstance(bar, dict) else None,
        )
    row.load_start, row.load_end = load_start, hostinfo.load_average()
    row.busy = hostinfo.busy(row.load_start) or hostinfo.busy(row.load_end)
    row.peak_rss_mb = hostinfo.rss_peak_mb()
    return row
