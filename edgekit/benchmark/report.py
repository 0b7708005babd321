"""The benchmark's table for people: one line per row, its speed-up against the baseline with a
Mann-Whitney U test on the per-run times (≈ where the test cannot tell the two apart), and how a
row is named on the command line (`--baseline`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
            f"{ci_pct(r):.1f}%" if r.ci_high_ms else "?",
            f"{r.p90_ms:.4f}",
            f"{r.p99_ms:.4f}",
            f"{100 * r.cv:.1f}%",
            f"{r.throughput:.0f}",
            f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "?",
            f"{r.pipeline_p50_ms:.4f}" if r.pipeline_p50_ms is not None else "-",
            metric_cell(r) + (" !" if r.busy else ""),
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
