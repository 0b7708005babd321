"""Series as datasets: one column of a CSV file in time order, cleaned (each step reported) and cut
into windows of past readings with the next readings to forecast (numpy only).

`--data` is one text, as for tables, so a card can name it and `export` and `evaluate` read the
same windows again: the file, then its options as a query, e.g.

    readings.csv?target=temperature&time=stamp&window=48&horizon=6&season=24

`edgekit train forecast --data readings.csv --target temperature` writes the first part for you;
the others default to: the time column found by its name or its values, the season from the step
between readings, a window of one season (24 readings where there is none), a horizon of 4. The
shipped series is the weekly Mauna Loa CO2 (`co2`, statsmodels' copy); `--data shipped?window=104`
changes its options.

Cleaning, in order, each said in the notes: rows sorted by time (where they were not), repeated
times dropped, readings outside a stated range made missing, missing steps of the time column
inserted as missing readings, and every missing reading interpolated between its neighbours (a
series keeps its spacing: nothing is dropped from the middle of it).

The held-out part is the last 20% of the forecast origins, in time, and no training window's
targets reach into it; the validation part is the last eighth of the training windows. A series
is never shuffled before it is split: a window's neighbours share most of its readings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.cleaning import interpolate
from edgekit.runtime.datasets import DATASETS, VALIDATION_SHARE, Dataset, Split
from edgekit.runtime.datasets.tabular import HELDOUT_SHARE, shipped_table
from edgekit.runtime.series import (
    TIME_NAMES,
    describe_step,
    is_date,
    parse_time,
    parse_times,
    season_of,
    windows,
)
from edgekit.runtime.table import MAX_ROWS, Table, csv_rows, read_table

SPEC_KEYS = ("target", "time", "window", "horizon", "season", "missing", "range", "units", "duplicates")
DEFAULT_WINDOW, DEFAULT_HORIZON = 24, 4
# table options a series has no use for, and why (what `--features` and the like would ask)
NOT_FOR_SERIES = {
    "features": "a forecaster reads one column (--target) and its own past",
    "categorical": "a forecaster reads one column of numbers",
    "outliers": "a series keeps every step: state a range (--range) instead",
    "scale": "a forecaster scales each window by its own last reading and one fitted spread",
    "classes": "a forecaster predicts numbers",
    "max_rows": "a series is read whole, in order",
}


@dataclass(frozen=True)
class SeriesSource:
    """Which column of which file, in what order, and how it is cut into windows: what `--data`
    says for a series. None: found from the data (the time column, the season, the window)."""

    path: str  # a CSV file, or "shipped" for the loader's own series
    target: str | None = None
    time: str | None = None  # "" for the file's row order
    window: int | None = None
    horizon: int = DEFAULT_HORIZON
    season: int | None = None
    missing: str = "interpolate"
    ranges: Any = field(default_factory=lambda: MappingProxyType({}))  # column -> (low, high)
    units: Any = field(default_factory=lambda: MappingProxyType({}))
    duplicates: bool = True  # drop readings that repeat an earlier time

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", MappingProxyType(dict(self.ranges)))
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))
        if self.missing != "interpolate":
            raise ConfigError(
                f"missing={self.missing}: a series keeps its spacing, so its missing readings are "
                "interpolated between their neighbours (missing=interpolate)"
            )
        for name in ("window", "horizon", "season"):
            value = getattr(self, name)
            if value is not None and value < (2 if name == "window" else 1):
                raise ConfigError(f"{name}={value}: give at least {2 if name == 'window' else 1}")

    @classmethod
    def parse(cls, spec: str) -> SeriesSource:
        """`path?key=value&...` -> a SeriesSource; an unknown key or a bad value is one sentence."""
        from edgekit.runtime.datasets.tabular import _pair, _range

        path, _, query = spec.partition("?")
        options: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in NOT_FOR_SERIES:
                raise ConfigError(
                    f"--data {spec!r}: {key} does not apply to a series ({NOT_FOR_SERIES[key]})"
                )
            if key not in SPEC_KEYS:
                raise ConfigError(
                    f"--data {spec!r}: unknown option {key!r} (it takes {', '.join(SPEC_KEYS)})"
                )
            if key in ("window", "horizon", "season"):
                try:
                    options[key] = int(value)
                except ValueError:
                    raise ConfigError(f"{key}={value!r} is not a whole number") from None
            elif key == "range":
                options["ranges"] = dict(_range(p) for p in value.split(";") if p)
            elif key == "units":
                options[key] = dict(_pair(p, ":", "units=COLUMN:UNIT") for p in value.split(",") if p)
            elif key == "duplicates":
                if value not in ("drop", "keep"):
                    raise ConfigError(f"duplicates={value!r}: use drop or keep")
                options[key] = value == "drop"
            else:
                options[key] = value
        return cls(path, **options)

    def spec(self) -> str:
        """The text `parse` reads back: what the card's dataset `source` holds."""
        pairs: list[tuple[str, str]] = []
        for key in ("target", "time", "window", "horizon", "season"):
            value = getattr(self, key)
            if value is not None and not (key == "horizon" and value == DEFAULT_HORIZON):
                pairs.append((key, str(value)))
        if self.ranges:
            pairs.append(("range", ";".join(f"{k}:{lo:g}..{hi:g}" for k, (lo, hi) in self.ranges.items())))
        if self.units:
            pairs.append(("units", ",".join(f"{k}:{v}" for k, v in self.units.items())))
        if not self.duplicates:
            pairs.append(("duplicates", "keep"))
        query = urlencode(pairs, safe=",:;.")
        return f"{self.path}?{query}" if query else self.path

    def over(self, given: SeriesSource) -> SeriesSource:
        """`given`'s options over these (the shipped series' defaults), where `given` sets them."""
        default = SeriesSource("")
        changed = {
            f: getattr(given, f)
            for f in ("target", "time", "window", "horizon", "season", "ranges", "units", "duplicates")
            if getattr(given, f) != getattr(default, f)
        }
        return replace(self, **changed)


class SeriesDataset(Dataset):
    """A dataset of windows in time order: its validation part is the last eighth of the training
    windows (a random eighth would sit between training windows that share its readings)."""

    @cached_property
    def validation_index(self) -> np.ndarray:
        n = len(self.train)
        if n < 2:
            return np.zeros(0, dtype=np.int64)
        return np.arange(n - max(1, round(n * VALIDATION_SHARE)), n, dtype=np.int64)


def find_time_column(table: Table, target: str) -> str:
    """The column of times: one named like a time (date, time, timestamp, ...) whose values parse
    as times, else the first whose every value is a date (YYYYMMDD, ISO 8601: a column of plain
    numbers is a reading, not a clock); "" for none (the rows' order is used)."""
    others = [n for n in table.names if n != target]
    by_name = [n for n in others if n.strip().lower() in TIME_NAMES]
    for name in by_name + [n for n in others if n not in by_name]:
        values = table.columns[name]
        timely = parse_time if name in by_name else is_date
        if len(values) and all(timely(v) is not None and timely(v) is not False for v in values):
            return name
    return ""


def load_series(source: SeriesSource, name: str = "series") -> Dataset:
    """Read, order, clean and cut into windows: the Dataset a forecaster trains on, its cleaning
    said in `notes` (and in the card), its choices in `preprocess`."""
    path = Path(source.path)
    header, _ = csv_rows(path)
    if source.target is None:
        raise ConfigError(
            f"say which column of {path.name} to forecast with --target (its columns: {', '.join(header)})"
        )
    if source.target not in header:
        raise DataError(
            f"{path} has no column {source.target!r} to forecast: its columns are {', '.join(header)}"
        )
    if source.time and source.time not in header:
        raise DataError(f"{path} has no time column {source.time!r}: its columns are {', '.join(header)}")
    table = read_table(path, max_rows=MAX_ROWS)
    if table.rows_read > len(table):
        raise DataError(f"{path} has {table.rows_read:,} rows: a series is read whole, up to {MAX_ROWS:,}")
    if not table.is_number(source.target):
        raise DataError(f"column {source.target!r} of {path} holds text: a forecaster reads numbers")
    time = find_time_column(table, source.target) if source.time is None else source.time
    table = table.select([c for c in (time, source.target) if c])
    values, step, table = order_and_clean(table, source, time)
    season = source.season or season_of(step)
    window = source.window or (season if season >= 8 else DEFAULT_WINDOW)
    x, y = windows(values, window, source.horizon, season)
    n = len(x)
    held = max(1, round(n * HELDOUT_SHARE))
    # the first held-out origin; a training window's targets end before it
    cut = n - held
    train = np.arange(0, max(0, cut - source.horizon + 1))
    if len(train) < 2:
        raise DataError(f"{path} gives {n} windows of {window} readings: too few to train and test on")
    unit = source.units.get(source.target, "")
    declared = {
        "kind": "series",
        "column": source.target,
        "unit": unit,
        "time": time,
        "step": step,
        "window": window,
        "horizon": source.horizon,
        "season": season,
    }
    every = describe_step(step)
    description = (
        f"{path.name}: {source.target} every {every}, {len(values)} readings after cleaning; windows of "
        f"{window} -> the next {source.horizon}, seasonal-naive baseline over a season of {season}; "
        f"the last {held} origins held out"
    )
    return SeriesDataset(
        name,
        source.spec(),
        description,
        (source.target,),
        Split(x[train], y[train]),
        Split(x[cut:], y[cut:]),
        preprocess=declared,
        notes=table.notes,
    )


def order_and_clean(table: Table, source: SeriesSource, time: str) -> tuple[np.ndarray, float | None, Table]:
    """(the readings in time order with no gap, the step between them in seconds or None, the
    table with its notes): sorted, repeated times dropped, out-of-range readings and missing steps
    made missing, then every missing reading interpolated."""
    target = source.target
    assert target is not None
    step = None
    if time:
        seconds = parse_times(table.columns[time])
        bad = np.flatnonzero(np.isnan(seconds))
        if bad.size:
            raise DataError(
                f"{table.source}: column {time!r} holds {table.columns[time][bad[0]]!r}, which is not a date "
                "or time (give YYYYMMDD, an ISO 8601 date or time, or a number)"
            )
        order = np.argsort(seconds, kind="stable")
        if np.any(order != np.arange(len(order))):
            table = table.take(order).noted(f"sorted the rows by {time}")
            seconds = seconds[order]
        if source.duplicates:
            repeat = np.concatenate([[False], np.diff(seconds) == 0])
            if repeat.any():
                table = table.take(np.flatnonzero(~repeat)).noted(
                    f"dropped {int(repeat.sum())} readings that repeat an earlier {time}"
                )
                seconds = seconds[~repeat]
        gaps = np.diff(seconds)
        if gaps.size:
            step = float(np.median(gaps))
            table, seconds = fill_steps(table, seconds, step, time)
    values = table.columns[target].copy()
    for column, (low, high) in source.ranges.items():
        if column != target:
            raise ConfigError(f"range {column}: a forecaster reads {target!r} only")
        out = ~np.isnan(values) & ((values < low) | (values > high))
        if out.any():
            values[out] = np.nan
            table = table.noted(f"{int(out.sum())} readings outside {low:g}..{high:g} made missing")
    if np.isnan(values).all():
        raise DataError(f"{table.source}: column {target!r} has no readings")
    filled = interpolate(replace(table, columns={**table.columns, target: values}), [target])
    return filled.columns[target], step, filled


def fill_steps(table: Table, seconds: np.ndarray, step: float, time: str) -> tuple[Table, np.ndarray]:
    """Where the times skip whole steps (a logger that was off), the skipped steps as rows with a
    missing reading, so the series keeps its spacing. Irregular times are left as they are."""
    if step <= 0:
        return table, seconds
    missing = np.round(np.diff(seconds) / step).astype(np.int64) - 1
    missing[np.abs(np.diff(seconds) - (missing + 1) * step) > 0.1 * step] = 0  # not whole steps
    total = int(missing.clip(min=0).sum())
    if total == 0:
        return table, seconds
    at = np.repeat(np.arange(1, len(seconds)), missing.clip(min=0))
    columns = {}
    for name, values in table.columns.items():
        blank = np.full(total, np.nan) if values.dtype.kind == "f" else np.full(total, None, dtype=object)
        columns[name] = np.insert(values, at, blank)
    inserted = np.insert(seconds, at, np.nan)
    table = Table(columns, table.source, table.rows_read, table.notes).noted(
        f"inserted {total} missing steps where {time} skips (every {describe_step(step)})"
    )
    return table, inserted


def series_loader(name: str, default: SeriesSource | None):
    """The loader of a series: `default` (a shipped file and its options) unless --data names
    another file; --data "shipped?..." changes the shipped series' options."""

    def load(data: str | None) -> Dataset:
        if data is None or data == "shipped" or data.startswith("shipped?"):
            if default is None:
                raise ConfigError(
                    "give a series with --data FILE.csv --target COLUMN (or the shipped one: co2)"
                )
            given = SeriesSource.parse(data or "shipped")
            merged = replace(default.over(given), path=default.path)
            dataset = load_series(merged, name)
            # the card names the shipped series by its keyword, not by this machine's path to it
            return replace(dataset, source="shipped" + given.spec()[len("shipped") :])
        return load_series(SeriesSource.parse(data), "series")

    return load


CO2 = SeriesSource(
    str(shipped_table("co2")),
    target="co2",
    time="date",
    window=52,
    horizon=DEFAULT_HORIZON,
    season=52,
    units={"co2": "ppm"},
)
DATASETS.add(series_loader("series", None), "series")
DATASETS.add(series_loader("co2", CO2), "co2")
