"""The benchmark's table for people: one line per row, its speed-up against the baseline with a
Mann-Whitney U test on the per-run times (≈ where the test cannot tell the two apart), and how a
row is named on the command line (`--baseline`)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from edgekit.benchmark.results import BenchRow
from edgekit.errors import ConfigError
from edgekit.runtime.timing import SIGNIFICANCE, mann_whitney


def ci_pct(r: BenchRow) -> float:
    """The half-width of the median's interval, in % of the median (nan: not known)."""
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


def metric_cell(r: BenchRow) -> str:
    return f"{r.metric} {r.metric_value:.4f}" if r.metric_value is not None else "n/a"


def ms(value: float | None) -> str:
    """A time for people: 4 significant digits (0.07281, 31.09, 21913), never more."""
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 1000 else f"{value:.4g}"


BUSY = "!"
# the whole table's footnotes, said once under it where a row needs them
BUSY_NOTE = (
    f"{BUSY} the machine was busy while the row ran (load average above {{load:g}} per core): its "
    "times may be high"
)
WRAP = 80


class Column(NamedTuple):
    """A column of the table: its heading and the cell of a measured row."""

    head: str
    cell: Callable[[BenchRow], str]
    wide: bool = False  # only with `--wide` (every figure is in the result file and the CSV anyway)


COLUMNS = (
    Column("size KB", lambda r: f"{r.size_bytes / 1024:.1f}"),
    Column("load ms", lambda r: ms(r.load_ms), wide=True),
    Column("first ms", lambda r: ms(r.first_ms), wide=True),
    Column("p50 ms", lambda r: ms(r.p50_ms) + (f" {BUSY}" if r.busy else "")),
    Column("±", lambda r: f"{ci_pct(r):.1f}%" if r.ci_high_ms else "?"),
    Column("p90 ms", lambda r: ms(r.p90_ms), wide=True),
    Column("p99 ms", lambda r: ms(r.p99_ms), wide=True),
    Column("CV", lambda r: f"{100 * r.cv:.0f}%", wide=True),
    Column("items/s", lambda r: f"{r.throughput:.0f}", wide=True),
    Column("RSS MB", lambda r: f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "?", wide=True),
    Column("pipe p50", lambda r: ms(r.pipeline_p50_ms), wide=True),
)


def _varying(rows: Sequence[BenchRow]) -> list[tuple[str, Callable[[BenchRow], str]]]:
    """The columns that tell rows apart beyond file and backend: device, threads and batch, each
    where the rows differ in it or it is not the usual value (a table of CPU rows at batch 1 says
    neither)."""
    out: list[tuple[str, Callable[[BenchRow], str]]] = []
    for head, get, usual in (
        ("device", lambda r: r.device, "cpu"),
        ("threads", lambda r: "default" if r.threads is None else str(r.threads), "default"),
        ("batch", lambda r: str(r.batch), "1"),
    ):
        values = {get(r) for r in rows}
        if len(values) > 1 or values - {usual}:
            out.append((head, get))
    return out


def table(rows: Sequence[BenchRow], baseline: BenchRow | None = None, *, wide: bool = False) -> str:
    """The rows for people: file, backend (device, threads and batch where they vary), size, p50 with
    its interval, the speed-up against the baseline and the metric, in 80 columns for the usual
    rows; `wide` adds load and first-inference times, p90/p99, CV, throughput, peak memory, the
    whole pipeline's p50 and the test's p. The result file and the CSV hold every figure."""
    which = _varying(rows)
    columns = [c for c in COLUMNS if wide or not c.wide]
    metrics = {r.metric for r in rows if r.error is None and r.metric_value is not None}
    one_metric = next(iter(metrics)) if len(metrics) == 1 else None
    head = ["model", "backend", *(h for h, _ in which), *(c.head for c in columns)]
    if baseline:
        head += ["speed-up", *(["p"] if wide else [])]
    head.append(one_metric or "metric")
    lines = [head]
    for r in rows:
        named = [Path(r.model).name, r.backend, *(get(r) for _, get in which)]
        if r.error:
            lines.append([*named, f"failed: {r.error}"])
            continue
        cells = [*named, *(c.cell(r) for c in columns)]
        if baseline:
            p = p_against(r, baseline)
            cells.append(speedup_cell(r, baseline, p))
            if wide:
                cells.append("base" if r is baseline else _p_cell(p))
        if r.metric_value is None:
            cells.append("n/a")
        else:
            cells.append(f"{r.metric_value:.4f}" if one_metric else metric_cell(r))
        lines.append(cells)
    return format_columns(lines) + "".join(f"\n{note}" for note in footnotes(rows, baseline))


def footnotes(rows: Sequence[BenchRow], baseline: BenchRow | None) -> list[str]:
    """What the table's marks mean, said once under it, each wrapped to 80 columns."""
    from edgekit.runtime.hostinfo import BUSY_LOAD

    notes = []
    if baseline:
        notes.append(
            f"speed-up: the p50 of {baseline.label} over the row's; ≈: a Mann-Whitney U test on the "
            f"per-run times does not tell the row from it at 5% (p >= {SIGNIFICANCE:g})"
        )
    if any(r.busy for r in rows if r.error is None):
        notes.append(BUSY_NOTE.format(load=BUSY_LOAD))
    return [textwrap.fill(n, WRAP, subsequent_indent="  ", break_on_hyphens=False) for n in notes]


def format_columns(lines: list[list[str]]) -> str:
    """Left-aligned columns; a row shorter than the header (a failure) runs its last cell on."""
    n = len(lines[0])
    widths = [max(len(row[i]) for row in lines if len(row) == n or i < len(row) - 1) for i in range(n)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in lines
    )
