"""`edgekit compare`: bench results from several machines in one table, normalised to a baseline row,
with rows a host did not measure shown as missing; a chart a person reads at a glance; Markdown for a
README."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgekit.benchmark.report import format_columns, p_against, speedup_cell
from edgekit.benchmark.results import BenchResult, BenchRow, load_result
from edgekit.errors import ConfigError

DPI = 100
SAME = " (≈: a Mann-Whitney U test on the per-run times does not tell the row from it at 5%)"
WIDE_SPREAD = 20.0  # slowest / fastest p50 above this: a log axis


@dataclass
class Comparison:
    hosts: list[str]
    keys: list[str]  # every row name measured on any host, in first-seen order
    cells: dict[tuple[str, str], BenchRow]  # (host, key) -> row
    baseline: str | None

    def row(self, host: str, key: str) -> BenchRow | None:
        r = self.cells.get((host, key))
        return r if r is not None and r.error is None else None

    def base_row(self) -> BenchRow | None:
        """The baseline as measured on the first host."""
        return None if self.baseline is None else self.row(self.hosts[0], self.baseline)

    def base_p50(self) -> float | None:
        r = self.base_row()
        return r.p50_ms if r else None


def _host_names(results: Sequence[BenchResult]) -> list[str]:
    """One name per result: its host name, with the file's name where two share a host."""
    names = [r.host_name for r in results]
    return [f"{n} ({r.path.stem})" if names.count(n) > 1 else n for n, r in zip(names, results, strict=True)]


def merge(results: Sequence[BenchResult], baseline: str | None = None) -> Comparison:
    if not results:
        raise ConfigError("give at least one result file")
    hosts = _host_names(results)
    keys: list[str] = []
    cells: dict[tuple[str, str], BenchRow] = {}
    for host, result in zip(hosts, results, strict=True):
        for row in result.rows:
            if row.key not in keys:
                keys.append(row.key)
            cells[(host, row.key)] = row
    base = None
    if baseline:
        hits = [k for k in keys if baseline == k] or [k for k in keys if baseline in k]
        if len(hits) != 1:
            raise ConfigError(
                f"--baseline {baseline!r} names {len(hits)} rows; rows are: {', '.join(keys)}"
                if hits
                else f"--baseline {baseline!r} names no row; rows are: {', '.join(keys)}"
            )
        base = hits[0]
    else:
        measured = [k for k in keys if any((h, k) in cells and cells[(h, k)].error is None for h in hosts)]
        base = measured[0] if measured else None
    return Comparison(hosts, keys, cells, base)


def compare_files(paths: Sequence[Path], baseline: str | None = None) -> Comparison:
    return merge([load_result(Path(p)) for p in paths], baseline)


def _cell(c: Comparison, host: str, key: str) -> str:
    if (host, key) not in c.cells:
        return "missing"
    r = c.cells[(host, key)]
    if r.error:
        return "failed"
    base = c.base_row()
    ratio = f" ({speedup_cell(r, base, p_against(r, base))})" if base and r.p50_ms > 0 else ""
    return f"{r.p50_ms:.4g}{ratio}"


def rows_for(c: Comparison) -> list[list[str]]:
    head = ["row", *[f"{h} p50 ms" for h in c.hosts], "size KB", "metric"]
    lines = [head]
    for key in c.keys:
        any_row = next((c.cells[(h, key)] for h in c.hosts if (h, key) in c.cells), None)
        size = f"{any_row.size_bytes / 1024:.1f}" if any_row and any_row.size_bytes else "?"
        metric = next(
            (
                f"{r.metric} {r.metric_value:.4f}"
                for h in c.hosts
                if (r := c.row(h, key)) and r.metric_value is not None
            ),
            "n/a",
        )
        lines.append([key, *[_cell(c, h, key) for h in c.hosts], size, metric])
    return lines


def text_table(c: Comparison) -> str:
    note = f"speed-up against {c.baseline} on {c.hosts[0]} in brackets{SAME}" if c.base_p50() else ""
    return format_columns(rows_for(c)) + (f"\n\n{note}" if note else "")


def markdown(c: Comparison) -> str:
    lines = rows_for(c)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in lines[1:]]
    if c.base_p50():
        out.append(f"\nSpeed-up against `{c.baseline}` on {c.hosts[0]} in brackets{SAME}.")
    return "\n".join(out)


def chart_size(c: Comparison) -> tuple[int, int]:
    """(width, height) in pixels of the chart `plot` draws for this comparison."""
    bars = max(1, len(c.keys))
    return 1400, int(DPI * max(5.0, 1.5 + 0.28 * bars * max(1, len(c.hosts)) / 1.5))


def _axis_scale(axis, values: Sequence[float], set_scale, set_lim, wide: float = 4.0) -> None:
    """A log axis for values spread over more than a factor of `wide`, else a linear one; ticks as plain
    numbers (1, 2, 5, 10 ... on a log axis: "6x10^0" and unlabelled decades read badly), and a
    margin around values that are all alike, which would otherwise leave the axis with no tick."""
    import matplotlib.ticker as ticker

    values = [v for v in values if v > 0]
    if not values:
        return
    low, high = min(values), max(values)
    if high / low > wide:
        set_scale("log")
        axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_minor_formatter(ticker.NullFormatter())
    elif high / low < 1.2 and set_lim is not None:
        set_lim(low * 0.8, high * 1.2)
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def plot(c: Comparison, path: Path) -> Path:
    """p50 with a p90 whisker per row and host (a log axis where the spread is wide), and size
    against latency with the metric written beside each point."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edgekit.fileio import atomic_path

    width, height = chart_size(c)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(width / DPI, height / DPI), dpi=DPI, gridspec_kw={"width_ratios": [3, 2]}
    )
    n_hosts = max(1, len(c.hosts))
    step = 0.8 / n_hosts
    y = np.arange(len(c.keys))
    p50s = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, host in enumerate(c.hosts):
        vals, errs, ys = [], [], []
        for i, key in enumerate(c.keys):
            r = c.row(host, key)
            if r is None:
                continue
            vals.append(r.p50_ms)
            errs.append(max(0.0, r.p90_ms - r.p50_ms))
            ys.append(i + (j - (n_hosts - 1) / 2) * step)
        p50s += vals
        if vals:
            ax.barh(
                ys,
                vals,
                height=step * 0.9,
                xerr=[np.zeros(len(errs)), errs],
                capsize=2,
                label=host,
                color=colors[j % len(colors)],
            )
        for i, key in enumerate(c.keys):
            if (host, key) not in c.cells or c.cells[(host, key)].error:
                yy = i + (j - (n_hosts - 1) / 2) * step
                ax.text(
                    0.0,
                    yy,
                    "  missing" if (host, key) not in c.cells else "  failed",
                    va="center",
                    fontsize=7,
                    color="gray",
                    transform=ax.get_yaxis_transform(),
                )
    ax.set_yticks(y)
    ax.set_yticklabels([k.replace(":", " ") for k in c.keys], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency p50 ms (whisker: p90)")
    _axis_scale(ax.xaxis, p50s, ax.set_xscale, None, wide=WIDE_SPREAD)  # bars: linear from 0 unless wide
    # under the axes: inside, it covered the last rows' bars and whiskers
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(n_hosts, 3))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("latency per file, backend and host")
    for j, host in enumerate(c.hosts):
        pts = [r for k in c.keys if (r := c.row(host, k)) is not None and r.size_bytes]
        if not pts:
            continue
        ax2.scatter(
            [r.size_bytes / 1024 for r in pts],
            [r.p50_ms for r in pts],
            label=host,
            color=colors[j % len(colors)],
            alpha=0.8,
        )
        for r in pts:
            if r.metric_value is not None:
                ax2.annotate(
                    f"{r.metric_value:.3f}",
                    (r.size_bytes / 1024, r.p50_ms),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    sizes = [r.size_bytes / 1024 for k in c.keys for h in c.hosts if (r := c.row(h, k)) and r.size_bytes]
    _axis_scale(ax2.xaxis, sizes, ax2.set_xscale, ax2.set_xlim)
    _axis_scale(ax2.yaxis, p50s, ax2.set_yscale, ax2.set_ylim)
    ax2.set_xlabel("file size KB")
    ax2.set_ylabel("p50 ms")
    ax2.set_title("size against latency (label: held-out metric)")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return path
