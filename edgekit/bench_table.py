"""`edgekit bench`: one row per model file x backend x device x threads x batch, each measured in its
own child process (its memory is its own, and no row warms another), with a table for people, a
verdict for this host, and a versioned JSON/CSV record that `edgekit compare` merges across hosts.

`bench_model` measures one row in this process (the quickstart and the child call it);
`bench_models` plans the rows and runs each in a child (`edgekit.bench_worker`)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError, EdgekitError, first_line
from edgekit.fileio import write_text
from edgekit.runtime import hostinfo
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.scoring import evaluate
from edgekit.runtime.timing import SIGNIFICANCE, StopRule, mann_whitney, measure

SCHEMA = "edgekit-bench"
SCHEMA_VERSION = 2  # 1: the rows of edgekit <= 0.x before per-row processes (no schema fields)
READS = (1, 2)


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
    task: str = ""
    recipe: str = ""
    batch: int = 1
    providers: list[str] = field(default_factory=list)  # what ran (ONNX Runtime), never what was asked
    std_ms: float = 0.0
    cv: float = 0.0
    ci_low_ms: float = 0.0
    ci_high_ms: float = 0.0
    stable: bool = False
    throughput: float = 0.0  # items per second at this batch size (batch / mean)
    peak_rss_mb: float | None = None
    pipeline_p50_ms: float | None = None  # raw input to result, beside the bare call's p50
    load_start: float | None = None  # 1-minute load average when the row began and ended
    load_end: float | None = None
    busy: bool = False
    bar_points: float | None = None  # the card's allowed metric drop (points) against its reference
    error: str | None = None  # why this row could not be measured (the others go on)
    # two-sided Mann-Whitney p of this row's per-run times against the baseline row's (None: no
    # baseline, or this row is it); above SIGNIFICANCE the two are not told apart
    p_vs_baseline: float | None = None

    @property
    def name(self) -> str:
        """How a row is named in tables and by --baseline: file, backend, device, threads, batch."""
        t = "default" if self.threads is None else str(self.threads)
        return f"{Path(self.model).name}:{self.backend}:{self.device}:t{t}:b{self.batch}"

    @property
    def key(self) -> str:
        """The same row on another host: the name with the device as asked (the file by name)."""
        return self.name

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchRow:
        """A row from JSON or CSV; fields a schema-1 row lacks take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{**_defaults(), **{k: v for k, v in d.items() if k in known}})


def _defaults() -> dict[str, Any]:
    return {
        "model": "",
        "backend": "",
        "device": "",
        "format": "",
        "quantization": "",
        "size_bytes": 0,
        "load_ms": 0.0,
        "first_ms": 0.0,
        "p50_ms": 0.0,
        "p90_ms": 0.0,
        "p99_ms": 0.0,
        "mean_ms": 0.0,
        "runs": 0,
        "threads": None,
        "accuracy": None,
        "accuracy_samples": 0,
    }


def failed_row(
    model: Path, backend: str | None, device: str, threads: int | None, batch: int, why: str
) -> BenchRow:
    """A row that could not be measured, carrying its reason, named by the backend and device it
    asked for (`auto` resolved as a measured row's would be, so it lines up with them and with the
    same row on another host)."""
    backend, device = asked_for(model, backend, device)
    return BenchRow(
        **{**_defaults(), "model": str(model), "backend": backend, "device": device, "threads": threads},
        batch=batch,
        error=why,
    )


def asked_for(model: Path, backend: str | None, device: str) -> tuple[str, str]:
    """(backend, device) a row asks for: no backend is the one the file's suffix picks here; the
    `auto` device is the first the backend tries here (TFLite, Keras and OpenCV run on the CPU)."""
    from edgekit.runtime.backends import select_backend

    if backend is None:
        try:
            backend = select_backend(Path(model)).name
        except EdgekitError:  # no installed backend opens it: the row says so in its reason
            return "auto", device
    if device == "auto":
        if backend == "onnxruntime":
            from edgekit.runtime.backends.onnxruntime import first_device

            device = first_device(device)
        else:
            device = "cpu"
    return backend, device


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


def bench_model(
    path: Path,
    *,
    backend: str | None = None,
    threads: int | None = None,
    runs: int | None = 200,
    warmup: int = 20,
    data: str | None = None,
    eval_samples: int | None = 1000,
    device: str = "auto",
    batch: int = 1,
    max_time: float = 5.0,
    shapes: dict[str, list[int]] | None = None,
    profile: bool = False,
    evaluate_metric: bool = True,
) -> BenchRow:
    """Measure one row in this process (the child of `bench_models` calls this)."""
    spec = RowSpec(
        str(path),
        backend,
        device,
        threads,
        batch,
        runs,
        max_time,
        warmup,
        data,
        eval_samples,
        evaluate_metric,
        dict(shapes or {}),
        profile,
    )
    return measure_row(spec)


def _card_for(path: Path, spec: RowSpec):
    """A tensor card made with the row's --shape values, for a file that carries no card."""
    if not spec.shapes:
        return None
    from edgekit.runtime.backends import open_model, read_card
    from edgekit.runtime.tasks.tensor import tensor_card

    if read_card(path) is not None:
        raise ConfigError(f"--shape is for models with no card; {path.name} has one")
    with open_model(path, spec.backend, spec.threads, "cpu" if spec.device == "auto" else spec.device) as s:
        return tensor_card(path, s, spec.shapes)


def _batched(predictor: Predictor, feeds: list[np.ndarray], batch: int) -> list[np.ndarray]:
    """The feeds of one input repeated to `batch` along the first axis, the session resized to take
    them where it must be (TFLite); one sentence when the model's batch is fixed."""
    if batch == 1:
        return feeds
    out = [np.repeat(f, batch, axis=0) if f.shape and f.shape[0] == 1 else f for f in feeds]
    session = predictor.session
    if hasattr(session, "_it"):  # a TFLite interpreter takes a new shape only when told
        from edgekit.runtime.backends.tflite import resize_inputs

        resize_inputs(session, [f.shape for f in out])
        return out
    fixed = [i for i in session.inputs if i.shape and i.shape[0] not in (None, batch)]
    if fixed:
        shown = "x".join(str(d) for d in fixed[0].shape)
        raise ConfigError(
            f"{Path(session.path).name} takes a fixed batch (input {shown}): no row at batch {batch}"
        )
    return out


def measure_row(spec: RowSpec) -> BenchRow:
    path = Path(spec.model)
    load_start = hostinfo.load_average()
    t0 = time.perf_counter()
    card = _card_for(path, spec)
    with Predictor(
        path, backend=spec.backend, threads=spec.threads, device=spec.device, card=card
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
        execution = getattr(session, "execution", None)
        if execution:
            extra["execution"] = execution
        if card.task == "tensor":
            extra["card"] = "inferred from the file's tensors (no edgekit card)"
        if spec.profile:
            extra["profile"] = _profile(path, session, feeds, spec)
        bar = card.parity.get("bar", {}) if isinstance(card.parity, dict) else {}
        row = BenchRow(
            model=str(path),
            backend=session.backend,
            device=session.device,
            format=card.format or path.suffix.lstrip("."),
            quantization=card.quantization,
            size_bytes=path.stat().st_size,
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


def _profile(path: Path, session: Any, feeds: list[np.ndarray], spec: RowSpec) -> dict[str, Any]:
    """Per-operator figures from the backend's own profiler, where it has one."""
    from edgekit.runtime.backends import SessionOptions

    if session.backend == "onnxruntime":
        from edgekit.runtime.backends.onnxruntime import profile_onnx

        device = "cpu" if session.device == "cpu" else spec.device
        return {"ops": profile_onnx(path, feeds, SessionOptions(spec.threads, device))}
    module = getattr(session, "module", None)
    if module:
        from edgekit.runtime.backends.tflite import profile_tflite

        return profile_tflite(path, module, spec.threads, feeds)
    return {"note": f"{session.backend} has no profiler edgekit reads"}


# --- the rows, each in a child process ------------------------------------------------------------


def plan_rows(
    paths: Sequence[Path],
    backends: Sequence[str],
    devices: Sequence[str],
    threads: Sequence[int | None],
    batches: Sequence[int],
) -> list[tuple[Path, str | None, str, int | None, int]]:
    """Every combination that can run here. `all` is every installed backend for the file's kind;
    a named backend that does not open a file is left out for that file (and said if it opens none)."""
    from edgekit.runtime.backends import BACKENDS, backends_for

    for name in backends:
        if name not in ("all", "auto"):
            BACKENDS.get(name)  # an unknown name: one sentence with a "did you mean"
    for d in devices:
        if d not in ("auto", "cpu", "cuda", "tensorrt"):
            raise ConfigError(f"unknown --device {d!r}: use cpu, cuda, tensorrt or auto")
    plan = []
    for path in paths:
        suffix = Path(path).suffix.lower()
        chosen: list[str | None] = []
        for name in backends:
            if name == "all":
                chosen += [b.name for b in backends_for(path) if b.available()] or [None]
            elif name == "auto":
                chosen.append(None)
            elif suffix in BACKENDS.get(name).suffixes:
                chosen.append(name)
        if not chosen:
            raise ConfigError(f"none of --backend {','.join(backends)} opens {Path(path).name}")
        for backend in dict.fromkeys(chosen):
            for device in devices:
                if device != "auto" and backend not in (None, "onnxruntime") and suffix != ".onnx":
                    if device == "cpu":
                        pass  # TFLite and Keras run on the CPU here: the row is the CPU row
                    else:
                        continue
                for t in threads:
                    for b in batches:
                        plan.append((Path(path), backend, device, t, b))
    return plan


Progress = Callable[[int, int, BenchRow], None]


def run_in_child(spec: RowSpec, timeout: float) -> BenchRow:
    """Measure one row in a fresh interpreter; a crash, a hang or a refusal becomes the row's reason."""
    cmd = [sys.executable, "-m", "edgekit.bench_worker"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(
            cmd, input=json.dumps(asdict(spec)), capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        why = f"did not finish in {timeout:.0f} s"
        return failed_row(Path(spec.model), spec.backend, spec.device, spec.threads, spec.batch, why)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        doc = json.loads(last)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "row" in doc:
        return BenchRow.from_dict(doc["row"])
    why = doc.get("error") if isinstance(doc, dict) else None
    if not why:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        why = f"the process ended with code {proc.returncode}" + (f": {lines[-1]}" if lines else "")
    return failed_row(Path(spec.model), spec.backend, spec.device, spec.threads, spec.batch, why)


def bench_models(
    paths: Sequence[Path],
    backends: Sequence[str | None] = (None,),
    *,
    devices: Sequence[str] = ("auto",),
    threads: Sequence[int | None] | int | None = None,
    batches: Sequence[int] = (1,),
    runs: int | None = None,
    max_time: float = 5.0,
    warmup: int = 10,
    data: str | None = None,
    eval_samples: int | None = 1000,
    shapes: dict[str, list[int]] | None = None,
    profile: bool = False,
    progress: Progress | None = None,
    in_process: bool = False,
    seed: int | None = 0,
) -> list[BenchRow]:
    """Plan the rows and measure each in its own child process (`in_process` for the quickstart's
    few rows), in an order shuffled with `seed` (None: as planned), returned in the planned order.
    The held-out metric is measured once per file, backend and device, and copied to that file's
    other rows (threads and batch do not change it).

    A random order spreads a drift of the machine (clocks, a neighbour's load, the page cache) over
    all rows instead of loading it on the last ones, as `benchmark_model` does with its option sets
    (pyperf measured ~40% less run-to-run variance from interleaving)."""
    if runs is not None and runs < 1:
        raise ConfigError("--runs must be at least 1")
    if max_time <= 0:
        raise ConfigError("--max-time must be positive")
    if any(b < 1 for b in batches):
        raise ConfigError("--batch must be at least 1")
    if threads is None or isinstance(threads, int):
        threads = [threads]
    if any(t is not None and t < 1 for t in threads):
        raise ConfigError("--threads must be at least 1")
    names = [b or "auto" for b in backends]
    plan = plan_rows(paths, names, devices, threads, batches)
    order = list(range(len(plan)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    rows: dict[int, BenchRow] = {}
    evaluated: dict[tuple[str, str | None, str], BenchRow] = {}
    for done, i in enumerate(order, 1):
        path, backend, device, t, b = plan[i]
        key = (str(path), backend, device)
        spec = RowSpec(
            str(path),
            backend,
            device,
            t,
            b,
            runs,
            max_time,
            warmup,
            data,
            eval_samples,
            evaluate=key not in evaluated and b == 1,
            shapes=dict(shapes or {}),
            profile=profile,
        )
        if in_process:
            try:
                row = measure_row(spec)
            except EdgekitError as e:
                row = failed_row(path, backend, device, t, b, str(e))
        else:
            row = run_in_child(spec, timeout=300 + 4 * max_time + (runs or 0) * 0.5)
        if row.error is None and spec.evaluate:
            evaluated[key] = row
        row.extra["run_order"] = done  # when it ran, 1-based: the table keeps the planned order
        rows[i] = row
        if progress:
            progress(done, len(plan), row)
    for i, (path, backend, device, _, _) in enumerate(plan):
        row, src = rows[i], evaluated.get((str(path), backend, device))
        if row.error is None and src is not None and src is not row:
            row.metric, row.metric_value, row.accuracy = src.metric, src.metric_value, src.accuracy
            row.accuracy_samples = src.accuracy_samples
    return [rows[i] for i in range(len(plan))]


def progress_printer(stream: Any = None) -> Progress:
    """A bar on a terminal, one line per row otherwise (stderr by default)."""
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()

    def show(done: int, total: int, row: BenchRow) -> None:
        what = f"{row.name}: " + (
            f"failed ({row.error})"
            if row.error
            else f"p50 {row.p50_ms:.4g} ms ±{_ci_pct(row):.1f}% ({row.runs} runs)"
        )
        if row.busy:
            what += " [machine busy]"
        if tty:
            width = 24
            filled = round(width * done / total)
            end = "\n" if done == total else ""
            stream.write(f"\r\x1b[2K[{'#' * filled}{'-' * (width - filled)}] {done}/{total} {what[:90]}{end}")
        else:
            stream.write(f"[{done}/{total}] {what}\n")
        stream.flush()

    return show


# --- tables, verdict, files ------------------------------------------------------------------------


def _ci_pct(r: BenchRow) -> float:
    if r.p50_ms <= 0 or r.ci_high_ms <= 0:
        return float("nan")
    return 100 * max(r.p50_ms - r.ci_low_ms, r.ci_high_ms - r.p50_ms) / r.p50_ms


def find_row(rows: Sequence[BenchRow], spec: str) -> BenchRow:
    """`--baseline`: a row by its number in the table (1-based) or by a unique part of its name."""
    ok = [r for r in rows if r.error is None]
    if spec.isdigit() and 1 <= int(spec) <= len(rows):
        row = rows[int(spec) - 1]
        if row.error is None:
            return row
        raise ConfigError(f"--baseline {spec}: that row was not measured ({row.error})")
    hits = [r for r in ok if spec == r.name] or [r for r in ok if spec in r.name]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ConfigError(
            f"--baseline {spec!r} names no measured row (rows: {', '.join(r.name for r in ok)})"
        )
    raise ConfigError(f"--baseline {spec!r} names {len(hits)} rows: {', '.join(r.name for r in hits)}")


def default_baseline(rows: Sequence[BenchRow]) -> BenchRow | None:
    """Keras's own `model(x)` where it was measured (the speed-up a user of Keras gets), else the
    first measured row, as `edgekit compare` takes it."""
    ok = [r for r in rows if r.error is None]
    keras = [r for r in ok if r.backend == "keras" and r.batch == 1]
    return (keras or ok or [None])[0]


def p_against(row: BenchRow, baseline: BenchRow | None) -> float | None:
    """Two-sided Mann-Whitney p of `row`'s per-run times against `baseline`'s (None where either has
    no samples, or `row` is the baseline): the chance of a difference this large between two rows
    that are as fast as each other."""
    if baseline is None or row is baseline or row.error or baseline.error:
        return None
    a, b = row.extra.get("samples_ms") or [], baseline.extra.get("samples_ms") or []
    if not a or not b:
        return None
    return mann_whitney(a, b)[1]


def mark_against(rows: Sequence[BenchRow], baseline: BenchRow | None) -> None:
    """Record each row's p-value against the baseline in the row (for the result file and CSV)."""
    for r in rows:
        r.p_vs_baseline = p_against(r, baseline)


def _p_cell(p: float | None) -> str:
    return "?" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def speedup_cell(row: BenchRow, baseline: BenchRow, p: float | None) -> str:
    """`1.52x`, or `≈1.02x` when the Mann-Whitney test cannot tell the two apart at 5%."""
    if row.p50_ms <= 0:
        return "?"
    same = p is not None and p >= SIGNIFICANCE
    return f"{'≈' if same else ''}{baseline.p50_ms / row.p50_ms:.2f}x"


def _metric(r: BenchRow) -> str:
    return f"{r.metric} {r.metric_value:.4f}" if r.metric_value is not None else "n/a"


def table(rows: Sequence[BenchRow], baseline: BenchRow | None = None) -> str:
    head = [
        "model",
        "backend",
        "device",
        "thr",
        "batch",
        "size KB",
        "load ms",
        "first ms",
        "p50 ms",
        "±CI",
        "p90 ms",
        "p99 ms",
        "CV",
        "items/s",
        "RSS MB",
        "pipe p50",
        "metric",
    ]
    if baseline:
        head += ["speed-up", "p"]
    lines = [head]
    for r in rows:
        thr = "-" if r.threads is None else str(r.threads)
        if r.error:
            lines.append([Path(r.model).name, r.backend, r.device, thr, str(r.batch), f"failed: {r.error}"])
            continue
        cells = [
            Path(r.model).name,
            r.backend,
            r.device,
            thr,
            str(r.batch),
            f"{r.size_bytes / 1024:.1f}",
            f"{r.load_ms:.1f}",
            f"{r.first_ms:.2f}",
            f"{r.p50_ms:.4f}",
            f"{_ci_pct(r):.1f}%" if r.ci_high_ms else "?",
            f"{r.p90_ms:.4f}",
            f"{r.p99_ms:.4f}",
            f"{100 * r.cv:.1f}%",
            f"{r.throughput:.0f}",
            f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "?",
            f"{r.pipeline_p50_ms:.4f}" if r.pipeline_p50_ms is not None else "-",
            _metric(r) + (" !" if r.busy else ""),
        ]
        if baseline:
            p = p_against(r, baseline)
            cells.append(speedup_cell(r, baseline, p))
            cells.append("base" if r is baseline else _p_cell(p))
        lines.append(cells)
    note = (
        f"\nspeed-up: {baseline.name}'s p50 / the row's; p: Mann-Whitney U on the per-run times "
        f"against it, ≈ where p >= {SIGNIFICANCE:g} (no difference shown at 5%)"
        if baseline
        else ""
    )
    return format_columns(lines) + note


def format_columns(lines: list[list[str]]) -> str:
    """Left-aligned columns; a row shorter than the header (a failure) runs its last cell on."""
    n = len(lines[0])
    widths = [max(len(row[i]) for row in lines if len(row) == n or i < len(row) - 1) for i in range(n)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in lines
    )


def family(r: BenchRow) -> str:
    """Files of one model in several formats and quantizations: the card's recipe, else the file name
    without its quantization suffix (mobilenet_int8.tflite and mobilenet.onnx are one family)."""
    if r.recipe:
        return r.recipe
    return re.sub(r"([_-](int8|fp32|fp16|float32|float16|dynamic|quant|float))+$", "", Path(r.model).stem)


def meets_bar(r: BenchRow, rows: Sequence[BenchRow]) -> bool | None:
    """Whether a row's metric is within its card's allowed drop of the best of its family (None: not
    measured here)."""
    if r.metric_value is None:
        return None
    same = [
        x.metric_value
        for x in rows
        if family(x) == family(r) and x.metric == r.metric and x.metric_value is not None
    ]
    bar = r.bar_points if r.bar_points is not None else 1.0
    return (max(same) - r.metric_value) * 100 <= bar + 1e-9


# DESIGN.md's measured facts, said where a profile or the CPU flags point at them
SLOW_INT8_OPS = {
    "ConvInteger": "ONNX Runtime's ConvInteger has no fast kernel: 4.5-6x slower than the fp32 Conv",
    "MatMulInteger": "ONNX Runtime's MatMulInteger is slower than the fp32 MatMul for small matrices",
    "QLinearConv": "ONNX Runtime's QLinearConv is no faster than the fp32 Conv in small CNNs (DESIGN.md: "
    "1.00-1.12x of fp32 on a VNNI Xeon)",
}
DEQUANT_OPS = {"DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "DEQUANTIZE", "QUANTIZE"}
FLOAT_COMPUTE = {
    "Conv",
    "MatMul",
    "Gemm",
    "FusedConv",
    "FusedMatMul",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "LSTM",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
}


def int8_reasons(int8: BenchRow, host: dict[str, Any]) -> list[str]:
    """Why an int8 row is slower than its fp32 twin, from what was measured (its profile) and this
    CPU's flags."""
    out = []
    prof = int8.extra.get("profile") or {}
    ops = prof.get("ops") or []
    if int8.backend == "onnxruntime" and ops:
        slow = [o for o in ops if o["op"] in SLOW_INT8_OPS]
        for o in slow:
            out.append(f"{o['op']} takes {100 * o['share']:.0f}% of the time: {SLOW_INT8_OPS[o['op']]}")
        deq = [o for o in ops if o["op"] in DEQUANT_OPS]
        if deq:
            share = sum(o["share"] for o in deq)
            out.append(
                f"(de)quantize ops ({', '.join(sorted({o['op'] for o in deq}))}) take {100 * share:.0f}%"
            )
        flt = [o for o in ops if o["op"] in FLOAT_COMPUTE]
        if flt:
            out.append(f"stayed in float: {', '.join(sorted({o['op'] for o in flt}))}")
    elif ops:  # TFLite: what the delegate took and what computes in float
        missed = sorted({o["op"] for o in ops if not o.get("delegate")})
        flt = sorted({o["op"] for o in ops if o.get("computes") == "float" and o["op"] in FLOAT_COMPUTE})
        deq = sorted({o["op"] for o in ops if o["op"] in DEQUANT_OPS})
        if missed:
            out.append(f"not taken by XNNPACK (TFLite's reference kernels): {', '.join(missed)}")
        if flt:
            out.append(f"stayed in float: {', '.join(flt)}")
        if deq:
            out.append(f"dequantize on the way: {', '.join(deq)}")
    flags = set((host.get("cpu") or {}).get("flags") or [])
    x86 = "avx2" in flags or "avx" in flags
    if x86 and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        out.append(
            "this CPU has no VNNI (AVX-512 VNNI / AVX-VNNI) or AMX: int8 dot products take several "
            "instructions each (DESIGN.md: int8 TFLite was 1.46x slower than fp32 on an AVX2-only "
            "EPYC, 0.42-0.49x on VNNI CPUs)"
        )
    if not x86 and flags and "asimddp" not in flags:
        out.append("this Arm CPU has no dot-product (asimddp) instructions: int8 kernels gain little")
    if not ops:
        out.append("run with --profile for per-operator times")
    return out


def verdict(rows: Sequence[BenchRow], host: dict[str, Any] | None = None) -> list[str]:
    """What to ship on this host, in plain sentences, from the rows measured."""
    host = host or {}
    ok = [r for r in rows if r.error is None]
    if not ok:
        return ["nothing could be measured"]
    lines = []
    good = [r for r in ok if meets_bar(r, ok) is not False]
    fastest = min(good or ok, key=lambda r: r.p50_ms / r.batch)
    unmeasured = " (accuracy not measured)" if fastest.metric_value is None else ", meets its accuracy bar"
    lines.append(f"fastest: {fastest.name} at {fastest.p50_ms / fastest.batch:.4g} ms per item{unmeasured}")
    smallest = min(ok, key=lambda r: r.size_bytes)
    lines.append(f"smallest: {Path(smallest.model).name} ({smallest.size_bytes / 1024:.1f} KB)")
    for r in ok:
        if meets_bar(r, ok) is False:
            lines.append(f"warning: {r.name} misses its accuracy bar ({_metric(r)})")
    # a smaller file that is slower, on the same backend, device, threads and batch
    for a in ok:
        for b in ok:
            same = (a.backend, a.device, a.threads, a.batch, family(a)) == (
                b.backend,
                b.device,
                b.threads,
                b.batch,
                family(b),
            )
            if a is b or not same or a.size_bytes >= b.size_bytes or a.p50_ms <= b.p50_ms * 1.05:
                continue
            lines.append(
                f"warning: {Path(a.model).name} is {a.size_bytes / b.size_bytes:.2f}x the size of "
                f"{Path(b.model).name} but {a.p50_ms / b.p50_ms:.2f}x slower on {a.backend}"
                f" (threads {a.threads or 'default'}, batch {a.batch})"
            )
            if a.quantization in ("int8", "dynamic") and b.quantization in ("fp32", "fp16"):
                lines.extend(f"  why: {why}" for why in int8_reasons(a, host))
    busy = [r for r in ok if r.busy]
    if busy:
        lines.append(
            f"warning: {len(busy)} row(s) ran while the machine was busy (load average above "
            f"{hostinfo.BUSY_LOAD:g} per core): their times may be high, and the p-values count a "
            "change of load between rows as a difference (the same file twice, at a load of 9.5 on 2 "
            "cores, differed by 9-29% with p < 0.001)"
        )
    noisy = [r for r in ok if not r.stable and r.runs and r.extra.get("seconds")]
    if noisy:
        lines.append(
            f"note: {len(noisy)} row(s) stopped at the time limit before the median was known to "
            "±2.5%: give --max-time more"
        )
    for r in ok:
        for note in (r.extra.get("execution") or {}).get("notes", []):
            lines.append(f"note: {r.name}: {note}")
    return lines


def machine() -> dict[str, Any]:
    """The host, with the keys results written before schema 2 had (platform, processor, cpus)."""
    import platform

    h = hostinfo.host()
    return {
        **h,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": h["cpu"]["model"],
        "cpus": h["cpu"]["cores"],
    }


def result_doc(rows: Sequence[BenchRow], host: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "machine": host or machine(),
        "results": [asdict(r) for r in rows],
        **more,
    }


def save_json(rows: Sequence[BenchRow], path: Path, host: dict[str, Any] | None = None, **more: Any) -> Path:
    return write_text(Path(path), json.dumps(result_doc(rows, host, **more), indent=1))


def default_result_path(host: dict[str, Any], folder: Path = Path("bench-results")) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(host.get("hostname") or "host")) or "host"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return folder / f"{name}-{stamp}.json"


@dataclass
class BenchResult:
    """A result file read back: its host, its rows, where it came from."""

    path: Path
    host: dict[str, Any]
    rows: list[BenchRow]
    schema_version: int

    @property
    def host_name(self) -> str:
        return str(self.host.get("hostname") or self.path.stem)


def load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read benchmark results {path}: {first_line(e)}") from None


def load_result(path: Path) -> BenchResult:
    """A result file of any schema this edgekit reads; another schema, or a file that is not a result,
    is one sentence naming it."""
    path = Path(path)
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise DataError(f"{path} is not an edgekit bench result (no 'results' list)")
    version = doc.get("schema_version", 1)
    if doc.get("schema", SCHEMA) != SCHEMA or version not in READS:
        raise DataError(
            f"{path} is a result of schema {doc.get('schema', SCHEMA)} version {version}; this edgekit reads "
            f"{SCHEMA} versions {', '.join(map(str, READS))}: upgrade edgekit or re-run the bench"
        )
    rows = []
    for i, d in enumerate(doc["results"]):
        if (
            not isinstance(d, dict)
            or not isinstance(d.get("model"), str)
            or not isinstance(d.get("p50_ms", 0), int | float)
        ):
            raise DataError(f"{path}: result {i + 1} is malformed (it needs model, backend and p50_ms)")
        try:
            rows.append(BenchRow.from_dict(d))
        except TypeError as e:
            raise DataError(f"{path}: result {i + 1} is malformed: {e}") from None
    if isinstance(doc.get("baseline"), dict):  # the quickstart's file keeps its Keras row apart
        rows.insert(0, BenchRow.from_dict(doc["baseline"]))
    host = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
    return BenchResult(path, host, rows, int(version))


CSV_FIELDS = [f.name for f in fields(BenchRow) if f.name not in ("extra", "providers")] + ["providers"]


def to_csv(rows: Sequence[BenchRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in rows:
        d = asdict(r)
        d.pop("extra")
        d["providers"] = ";".join(r.providers)
        w.writerow(d)
    return buf.getvalue()


def from_csv(text: str) -> list[BenchRow]:
    """Rows back from `to_csv` (types restored from the dataclass's fields)."""
    types = {f.name: str(f.type) for f in fields(BenchRow)}
    rows = []
    for d in csv.DictReader(io.StringIO(text)):
        kw: dict[str, Any] = {}
        for k, v in d.items():
            t = types.get(k, "str")
            if k == "providers":
                kw[k] = [p for p in v.split(";") if p]
            elif v == "":
                kw[k] = None if "None" in t else ("" if t.startswith("str") else None)
            elif t.startswith("bool"):
                kw[k] = v == "True"
            elif t.startswith("int"):
                kw[k] = int(v)
            elif t.startswith("float"):
                kw[k] = float(v)
            else:
                kw[k] = v
        rows.append(BenchRow.from_dict(kw))
    return rows
