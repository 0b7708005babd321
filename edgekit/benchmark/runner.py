"""The benchmark as a library object: `Benchmark(files, settings).run()` plans the rows, measures
each in its own child process in a seeded random order, marks the baseline, gives the verdict for
this host, and returns a `BenchReport` that prints its table and saves its result file. `edgekit
bench`, the quickstart and the scripts under bench/ all go through it, so a row is measured the same
way whoever asks; a remote run is the device's own `edgekit bench`, and its result file is this one.

A random order spreads a drift of the machine (clocks, a neighbour's load, the page cache) over all
rows instead of loading it on the last ones, as `benchmark_model` does with its option sets (pyperf
measured ~40% less run-to-run variance from interleaving). Ctrl-C stops the row being measured and
keeps every row already finished, in the report and in its file."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgekit.benchmark.measure import RowSpec, measure_row
from edgekit.benchmark.plan import Planned, failed_row, plan_rows
from edgekit.benchmark.report import ci_pct, default_baseline, find_row, mark_against, table
from edgekit.benchmark.results import BenchRow, machine, result_doc, to_csv
from edgekit.benchmark.verdict import verdict
from edgekit.benchmark.worker import run_in_child
from edgekit.errors import ConfigError, EdgekitError
from edgekit.fileio import write_text

Progress = Callable[[int, int, BenchRow], None]


@dataclass(frozen=True)
class BenchSettings:
    """How every row is measured (what `edgekit bench` takes besides the files), checked when made.
    `runs`: exactly this many timed runs (None: until the median is known to ±2.5%, or `max_time`);
    `baseline`: the row speed-ups are against, by number or part of its name (None: Keras where it
    was measured, else the first row); `seed`: of the random order (None: as planned)."""

    backends: tuple[str, ...] = ("auto",)
    devices: tuple[str, ...] = ("auto",)
    threads: tuple[int | None, ...] = (None,)
    batches: tuple[int, ...] = (1,)
    runs: int | None = None
    max_time: float = 5.0
    warmup: int = 10
    data: str | None = None
    eval_samples: int | None = 1000
    shapes: Mapping[str, list[int]] = field(default_factory=lambda: MappingProxyType({}))
    profile: bool = False
    seed: int | None = 0
    baseline: str | None = None

    def __post_init__(self) -> None:
        if self.runs is not None and self.runs < 1:
            raise ConfigError("--runs must be at least 1")
        if self.max_time <= 0:
            raise ConfigError("--max-time must be positive")
        if self.warmup < 0:
            raise ConfigError("--warmup must be 0 or more")
        if any(b < 1 for b in self.batches):
            raise ConfigError("--batch must be at least 1")
        if any(t is not None and t < 1 for t in self.threads):
            raise ConfigError("--threads must be at least 1 (leave it out for the library's default)")
        if self.eval_samples is not None and self.eval_samples < 1:
            raise ConfigError("--eval-samples must be at least 1")

    def spec(self, planned: Planned, evaluate: bool) -> RowSpec:
        return RowSpec(
            str(planned.path),
            planned.backend,
            planned.device,
            planned.threads,
            planned.batch,
            self.runs,
            self.max_time,
            self.warmup,
            self.data,
            self.eval_samples,
            evaluate=evaluate,
            shapes=dict(self.shapes),
            profile=self.profile,
        )

    @property
    def row_timeout(self) -> float:
        """How long one row may take before it is given up (loading a Keras model included)."""
        return 300 + 4 * self.max_time + (self.runs or 0) * 0.5


@dataclass
class BenchReport:
    """What one benchmark measured on this host: the rows in the order planned (the finished ones,
    if it was interrupted), the baseline, the verdict, and the host they were measured on."""

    rows: list[BenchRow]
    host: dict[str, Any]
    baseline: BenchRow | None
    verdict: list[str]
    seed: int | None = 0
    planned: int = 0
    interrupted: bool = False

    def doc(self) -> dict[str, Any]:
        """The result file's content (schema, host, rows with their raw samples, verdict)."""
        more: dict[str, Any] = {"baseline": self.baseline.name if self.baseline else None, "seed": self.seed}
        more["verdict"] = self.verdict
        if self.interrupted:
            more["interrupted"] = f"stopped after {len(self.rows)} of {self.planned} rows"
        return result_doc(self.rows, self.host, **more)

    def table(self, wide: bool = False) -> str:
        """The table for people (80 columns for the usual rows; `wide`: every figure)."""
        return table(self.rows, self.baseline, wide=wide)

    def save(self, path: Path) -> Path:
        return write_text(Path(path), json.dumps(self.doc(), indent=1))

    def save_csv(self, path: Path) -> Path:
        return write_text(Path(path), to_csv(self.rows))

    @property
    def measured(self) -> list[BenchRow]:
        return [r for r in self.rows if r.error is None]


class Benchmark:
    """Rows planned from files and settings (bad names, devices and numbers fail here, before any row
    runs); `run` measures them. `in_process` measures every row in this process instead of a child
    each (for a caller that has already paid for the imports and wants no new processes; the rows'
    memory figures are then the process's, not theirs)."""

    def __init__(
        self, files: Sequence[str | Path], settings: BenchSettings | None = None, *, in_process: bool = False
    ) -> None:
        self.settings = settings or BenchSettings()
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ConfigError("give at least one model file to benchmark")
        s = self.settings
        self.plan = plan_rows(self.files, list(s.backends), list(s.devices), list(s.threads), list(s.batches))
        self.in_process = in_process

    def _measure(self, spec: RowSpec, planned: Planned) -> BenchRow:
        if not self.in_process:
            return run_in_child(spec, timeout=self.settings.row_timeout)
        try:
            return measure_row(spec)
        except EdgekitError as e:
            return failed_row(planned, str(e))

    def run(self, progress: Progress | None = None) -> BenchReport:
        """Measure every planned row, each once, in the seeded random order; the held-out metric once
        per file, backend and device (threads and batch do not change it), copied to its other rows."""
        s = self.settings
        host = machine()
        order = list(range(len(self.plan)))
        if s.seed is not None:
            random.Random(s.seed).shuffle(order)
        rows: dict[int, BenchRow] = {}
        evaluated: dict[tuple[str, str | None, str], BenchRow] = {}
        interrupted = False
        try:  # Ctrl-C at any moment (a row measuring, or between two) keeps every finished row
            for done, i in enumerate(order, 1):
                planned = self.plan[i]
                key = (str(planned.path), planned.backend, planned.device)
                spec = s.spec(planned, evaluate=key not in evaluated and planned.batch == 1)
                starting = getattr(progress, "starting", None)
                if starting is not None:  # a row may take a while (loading Keras): say which one runs
                    starting(done, len(self.plan), failed_row(planned, "").label)
                row = self._measure(spec, planned)
                if row.error is None and spec.evaluate:
                    evaluated[key] = row
                row.extra["run_order"] = done  # when it ran, 1-based: the table keeps the planned order
                rows[i] = row
                if progress:
                    progress(done, len(self.plan), row)
        except KeyboardInterrupt:
            interrupted = True
            stopped = getattr(progress, "stopped", None)
            if stopped is not None:
                stopped()
        for i, planned in enumerate(self.plan):
            row, src = rows.get(i), evaluated.get((str(planned.path), planned.backend, planned.device))
            if row is not None and row.error is None and src is not None and src is not row:
                row.metric, row.metric_value, row.accuracy = src.metric, src.metric_value, src.accuracy
                row.accuracy_samples = src.accuracy_samples
        measured = [rows[i] for i in range(len(self.plan)) if i in rows]
        base = find_row(measured, s.baseline) if s.baseline and measured else default_baseline(measured)
        mark_against(measured, base)
        return BenchReport(measured, host, base, verdict(measured, host), s.seed, len(self.plan), interrupted)


class progress_printer:  # noqa: N801 (called as the function it was)
    """A bar on a terminal, one line per row otherwise (stderr by default); each row is named as
    it starts (`starting`), since one may take many seconds (loading Keras), and its figures are
    said when it ends."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.open = False  # a line begun by `starting`, ended by the row's figures

    def _bar(self, finished: int, total: int, text: str) -> None:
        width = 24
        filled = round(width * finished / total)
        end = "\n" if finished == total else ""
        self.stream.write(f"\r\x1b[2K[{'#' * filled}{'-' * (width - filled)}] {text[:100]}{end}")

    def starting(self, done: int, total: int, label: str) -> None:
        if self.tty:
            self._bar(done - 1, total, f"{done}/{total} {label}: measuring")
        else:
            self.stream.write(f"[{done}/{total}] {label}: ")
            self.open = True
        self.stream.flush()

    def stopped(self) -> None:
        """End the line of the row Ctrl-C stopped."""
        if self.open or self.tty:
            self.stream.write("stopped\n")
        self.open = False
        self.stream.flush()

    def __call__(self, done: int, total: int, row: BenchRow) -> None:
        what = (
            f"failed ({row.error})"
            if row.error
            else f"p50 {row.p50_ms:.4g} ms ±{ci_pct(row):.1f}% ({row.runs} runs)"
        )
        if row.busy:
            what += " [machine busy]"
        if self.tty:
            self._bar(done, total, f"{done}/{total} {row.label}: {what}")
        elif self.open:
            self.stream.write(f"{what}\n")
        else:
            self.stream.write(f"[{done}/{total}] {row.label}: {what}\n")
        self.open = False
        self.stream.flush()
