"""`edgekit bench`: per model file and backend, load time, first inference, latency percentiles,
size and held-out accuracy; a table for people and JSON for the record."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.errors import ConfigError, DataError
from edgekit.fileio import write_text
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.scoring import evaluate
from edgekit.runtime.timing import time_calls


@dataclass
class BenchRow:
    model: str
    backend: str
    device: str
    format: str
    quantization: str
    size_bytes: int
    load_ms: float
    first_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    runs: int
    threads: int | None
    accuracy: float | None  # classifiers: top-1 accuracy on held-out data
    accuracy_samples: int
    extra: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # the task's headline metric (accuracy, iou, map50) ...
    metric_value: float | None = None  # ... and its value on the held-out samples


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


def bench_model(
    path: Path,
    *,
    backend: str | None = None,
    threads: int | None = None,
    runs: int = 200,
    warmup: int = 20,
    data: str | None = None,
    eval_samples: int | None = 1000,
) -> BenchRow:
    path = Path(path)
    t0 = time.perf_counter()
    with Predictor(path, backend=backend, threads=threads) as predictor:
        load = time.perf_counter() - t0
        heldout = heldout_for(predictor.card, data, eval_samples)
        sample = heldout.x[0] if heldout is not None else _blank_input(predictor)
        t1 = time.perf_counter()
        predictor(sample)
        first = time.perf_counter() - t1
        feeds = predictor.task.preprocess(sample)
        run = predictor.session.run
        latency = time_calls(lambda: run(feeds), runs=runs, warmup=warmup)
        pipeline = time_calls(lambda: predictor(sample), runs=max(20, runs // 4), warmup=5)
        scores = evaluate(predictor, heldout.x, heldout.y)["metrics"] if heldout is not None else {}
        metric, value = next(iter(scores.items()), (None, None))
        card, session = predictor.card, predictor.session
    return BenchRow(
        model=str(path),
        backend=session.backend,
        device=session.device,
        format=card.format,
        quantization=card.quantization,
        size_bytes=_size(path),
        load_ms=load * 1e3,
        first_ms=first * 1e3,
        p50_ms=latency.p50_ms,
        p90_ms=latency.p90_ms,
        p99_ms=latency.p99_ms,
        mean_ms=latency.mean_ms,
        runs=runs,
        threads=threads,
        accuracy=scores.get("accuracy"),
        accuracy_samples=len(heldout) if heldout is not None else 0,
        extra={"pipeline_p50_ms": pipeline.p50_ms},
        metric=metric,
        metric_value=value,
    )


def _size(path: Path) -> int:
    return path.stat().st_size


def _blank_input(predictor: Predictor) -> Any:
    """A neutral raw input of the model's kind, for timing where no data is at hand."""
    return predictor.task.blank_input()


def machine() -> dict[str, Any]:
    import os

    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "edgekit": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def bench_models(
    paths: Sequence[Path], backends: Sequence[str | None] = (None,), **kw: Any
) -> list[BenchRow]:
    if kw.get("runs", 1) < 1:
        raise ConfigError("--runs must be at least 1")
    rows = []
    for path in paths:
        for backend in backends:
            rows.append(bench_model(path, backend=backend, **kw))
    return rows


def table(rows: Sequence[BenchRow], baseline: BenchRow | None = None) -> str:
    head = ["model", "backend", "size KB", "load ms", "first ms", "p50 ms", "p90 ms", "p99 ms", "metric"]
    if baseline:
        head.append("speed-up")
    lines = [head]
    for r in rows:
        acc = f"{r.metric} {r.metric_value:.4f}" if r.metric_value is not None else "n/a"
        cells = [
            Path(r.model).name,
            r.backend,
            f"{r.size_bytes / 1024:.1f}",
            f"{r.load_ms:.1f}",
            f"{r.first_ms:.2f}",
            f"{r.p50_ms:.4f}",
            f"{r.p90_ms:.4f}",
            f"{r.p99_ms:.4f}",
            acc,
        ]
        if baseline:
            cells.append(f"{baseline.p50_ms / r.p50_ms:.1f}x")
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines)


def save_json(rows: Sequence[BenchRow], path: Path) -> Path:
    doc = {"machine": machine(), "results": [asdict(r) for r in rows]}
    return write_text(Path(path), json.dumps(doc, indent=2))


def load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read benchmark results {path}: {e}") from None
