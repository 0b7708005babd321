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

    def label(self, key: str) -> str:
        """The row as people name it (`model.tflite on litert cpu 2 threads`), from any host's."""
        row = next((self.cells[(h, key)] for h in self.hosts if (h, key) in self.cells), None)
        return row.label if row is not None else key


def _host_names(results: Sequence[BenchResult]) -> list[str]:
    """One name per result, each different: its host name, with as much of the file's path as tells
    two of the same host apart (`vm (a)`, `vm (b)`; `vm (runs/a/vm)` where the stems are alike too),
    numbered where even the paths are alike."""
    names = [r.host_name for r in results]
    out = list(names)
    for name in set(names):
        group = [i for i, n in enumerate(names) if n == name]
        if len(group) < 2:
            continue
        for depth in range(1, 4):
            tails = ["/".join([*results[i].path.parent.parts, results[i].path.stem][-depth:]) for i in group]
            if len(set(tails)) == len(group):
                break
        else:
            tails = [str(k + 1) for k in range(len(group))]
        for i, tail in zip(group, tails, strict=True):
            out[i] = f"{name} ({tail})"
    return out


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
        labels = {k: next(r.label for (h, kk), r in cells.items() if kk == k) for k in keys}
        hits = [k for k in keys if baseline in (k, labels[k])] or [
            k for k in keys if baseline in k or baseline in labels[k]
        ]
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
        lines.append([c.label(key), *[_cell(c, h, key) for h in c.hosts], size, metric])
    return lines


def text_table(c: Comparison) -> str:
    import textwrap

    note = f"speed-up against {c.label(c.baseline)} on {c.hosts[0]} in brackets{SAME}" if c.base_p50() else ""
    note = textwrap.fill(note, 80, subsequent_indent="  ", break_on_hyphens=False)
    return format_columns(rows_for(c)) + (f"\n\n{note}" if note else "")


def markdown(c: Comparison) -> str:
    lines = rows_for(c)
    out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in lines[1:]]
    if c.base_p50():
        out.append(f"\nSpeed-up against {c.label(c.baseline)} on {c.hosts[0]} in brackets{SAME}.")
    return "\n".join(out)


def chart_size(c: Comparison) -> tuple[int, int]:
    """(width, height) in pixels of the chart `plot` draws for this comparison."""
    bars = max(1, len(c.keys))
    return 1400, int(DPI * max(5.0, 1.5 + 0.28 * bars * max(1, len(c.hosts)) / 1.5))


def nice_ticks(low: float, high: float, log: bool, most: int = 8) -> list[float]:
    """Tick values a person reads at once, at least two inside [low, high] wherever the range
    allows: on a log axis 1, 2, 5 times each power of ten (each power alone over a wide range,
    1 to 9 over a narrow one); on a linear one matplotlib's own."""
    import math

    if not log or low <= 0 or high <= low:
        return []
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def within(subs: tuple[int, ...]) -> list[float]:
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in subs]
        return [t for t in ticks if low <= t * (1 + 1e-9) and t <= high * (1 + 1e-9)]

    fine = within((1, 2, 5))
    if 3 <= len(fine) <= most:
        return fine
    if len(fine) < 3:  # less than a decade or so: every digit
        return within((1, 2, 3, 4, 5, 6, 7, 8, 9))
    decades = within((1,))
    step = math.ceil(len(decades) / most)
    decades = decades[::step]
    # and the 1-2-5 ticks nearest the ends, so the range's ends are labelled too (0.05 ... 50)
    return sorted({fine[0], *decades, fine[-1]})


def _axis_scale(axis, values: Sequence[float], set_scale, set_lim, wide: float = 4.0) -> None:
    """A log axis for values spread over more than a factor of `wide`, else a linear one; a margin
    around the values, and ticks labelled as plain numbers (`nice_ticks`): a log axis of
    matplotlib's own can leave its upper decades with no label."""
    import matplotlib.ticker as ticker

    values = [v for v in values if v > 0]
    if not values:
        return
    low, high = min(values), max(values)
    log = high / low > wide
    if log:
        set_scale("log")
        if set_lim is not None:
            set_lim(low / 1.5, high * 1.5)
    elif high / low < 1.2 and set_lim is not None:
        set_lim(low * 0.8, high * 1.2)
    axis.set_minor_formatter(ticker.NullFormatter())
    if log:
        lo, hi = sorted(axis.get_view_interval())
        axis.set_major_locator(ticker.FixedLocator(nice_ticks(max(lo, low / 10), hi, log=True)))
        axis.set_minor_locator(ticker.NullLocator())
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _point_names(c: Comparison) -> dict[str, str]:
    """What each row's point is called on the size panel: its file, and its backend where the same
    file ran on several."""
    files: dict[str, set[str]] = {}
    rows = {k: r for k in c.keys for h in c.hosts if (r := c.cells.get((h, k))) is not None}
    for r in rows.values():
        files.setdefault(Path(r.model).name, set()).add(r.backend)
    out = {}
    for key, r in rows.items():
        name = Path(r.model).name
        out[key] = f"{name} ({r.backend})" if len(files[name]) > 1 else name
    return out


def _spread_labels(ax, points: list[tuple[float, float, str]], fontsize: int = 7) -> None:
    """Write each point's name beside it, moved down where it would sit on a name already written
    (files of the same size and speed otherwise print on top of each other)."""
    fig = ax.figure
    fig.canvas.draw()
    to_px = ax.transData.transform
    right = ax.get_window_extent().x0 + 0.6 * ax.get_window_extent().width
    placed: list[tuple[float, float]] = []
    line = fontsize * 1.3 * fig.dpi / 72  # a label's height in pixels
    for x, y, text in sorted(points, key=lambda p: -p[1]):
        px, py = to_px((x, y))
        dy = 0.0
        while any(abs(px - qx) < 160 and abs(py + dy - qy) < line for qx, qy in placed):
            dy -= line
        placed.append((px, py + dy))
        left = px > right  # near the right edge: the name goes to the point's left
        ax.annotate(
            text,
            (x, y),
            fontsize=fontsize,
            xytext=(-4 if left else 4, 2 + dy * 72 / fig.dpi),
            textcoords="offset points",
            ha="right" if left else "left",
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if dy else None,
        )


def plot(c: Comparison, path: Path) -> Path:
    """The comparison's chart (`chart`) as a PNG."""
    import matplotlib.pyplot as plt

    from edgekit.fileio import atomic_path

    fig = chart(c)
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return path


def chart(c: Comparison):
    """p50 with a p90 whisker per row and host (a log axis where the spread is wide), and size
    against latency with each point named by its file; one legend of hosts for the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    width, height = chart_size(c)
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(width / DPI, height / DPI), dpi=DPI, gridspec_kw={"width_ratios": [3, 2]}
    )
    n_hosts = max(1, len(c.hosts))
    step = 0.8 / n_hosts
    y = np.arange(len(c.keys))
    p50s = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for j, host in enumerate(c.hosts):
        color = colors[j % len(colors)]
        handles.append(matplotlib.patches.Patch(color=color, label=host))
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
                color=color,
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
    ax.set_yticklabels([c.label(k) for k in c.keys], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency p50 ms (whisker: p90)")
    _axis_scale(ax.xaxis, p50s, ax.set_xscale, None, wide=WIDE_SPREAD)  # bars: linear from 0 unless wide
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("latency per file, backend and host")
    names = _point_names(c)
    points: list[tuple[float, float, str]] = []
    named: set[str] = set()
    for j, host in enumerate(c.hosts):
        pts = [(k, r) for k in c.keys if (r := c.row(host, k)) is not None and r.size_bytes]
        if not pts:
            continue
        ax2.scatter(
            [r.size_bytes / 1024 for _, r in pts],
            [r.p50_ms for _, r in pts],
            color=colors[j % len(colors)],
            alpha=0.8,
        )
        for key, r in pts:
            if key in named:  # a row is named once, at its first host's point
                continue
            named.add(key)
            metric = f" {r.metric_value:.3f}" if r.metric_value is not None else ""
            points.append((r.size_bytes / 1024, r.p50_ms, names[key] + metric))
    sizes = [r.size_bytes / 1024 for k in c.keys for h in c.hosts if (r := c.row(h, k)) and r.size_bytes]
    _axis_scale(ax2.xaxis, sizes, ax2.set_xscale, ax2.set_xlim)
    _axis_scale(ax2.yaxis, p50s, ax2.set_yscale, ax2.set_ylim)
    ax2.set_xlabel("file size KB")
    ax2.set_ylabel("p50 ms")
    metric_names = {r.metric for r in c.cells.values() if r.metric}
    said = f", held-out {next(iter(metric_names))}" if len(metric_names) == 1 else ", held-out metric"
    ax2.set_title(f"size against latency\n(each point: file{said})", fontsize=10)
    ax2.grid(alpha=0.3)
    # one legend of hosts for both panels, under them
    fig.legend(handles=handles, loc="lower center", ncol=min(n_hosts, 4), fontsize=8, title="host")
    legend_rows = -(-n_hosts // 4)
    fig.tight_layout(rect=(0, (0.045 + 0.03 * legend_rows) * 500 / height, 1, 1))
    _spread_labels(ax2, points)
    return fig
