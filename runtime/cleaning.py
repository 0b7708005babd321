"""The course's data cleaning, as explicit steps chosen by options, each one reported (numpy only).

Drop duplicate rows; drop rows whose target is missing; drop rows outside a stated range
(`ranges`: a physical rule, e.g. humidity 0..100); handle missing values (drop the row, fill it,
or, for a series in time order, interpolate); remove outliers by a stated rule fitted on the
training rows only (`iqr`: outside Q1 - 1.5 IQR .. Q3 + 1.5 IQR; `zscore`: more than 3 standard
deviations from the mean). Fill values and scaling are fitted on the training part by
`runtime/table_features.py` and written into the card, so a device applies exactly the same.

Each step takes a `Table` and returns it with a note saying what was done ("dropped 12 duplicate
rows"), or unchanged when there was nothing to do. A forecaster cleans its series with the same
steps: `drop_duplicates`, `drop_outside`, then `handle_missing(..., "interpolate")`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.runtime.table import Table, check_columns

MISSING_RULES = ("drop", "mean", "median", "zero", "interpolate")
OUTLIER_RULES = ("none", "iqr", "zscore")
SCALINGS = ("standard", "minmax", "none")
IQR_K = 1.5
Z_LIMIT = 3.0


@dataclass(frozen=True)
class Cleaning:
    """Which of the course's steps to take, checked when made. `missing`: drop the row, fill with the
    training part's mean or median (the most frequent value for text) or zero, or interpolate (a
    series in time order); `ranges`: column -> (low, high), rows outside dropped; `outliers`: the
    rule for training rows; `scale`: standardise (mean 0, variance 1), min-max (0..1) or none."""

    duplicates: bool = True  # drop repeated rows
    missing: str = "drop"
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    outliers: str = "none"
    scale: str = "standard"

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", MappingProxyType(dict(self.ranges)))
        for name, value, allowed in (
            ("missing", self.missing, MISSING_RULES),
            ("outliers", self.outliers, OUTLIER_RULES),
            ("scale", self.scale, SCALINGS),
        ):
            if value not in allowed:
                raise ConfigError(f"--{name} {value!r} is not a rule: use one of {', '.join(allowed)}")
        for name, (low, high) in self.ranges.items():
            if not low < high:
                raise ConfigError(f"--range {name}={low}..{high} is empty: give LOW..HIGH with LOW < HIGH")


def drop_duplicates(table: Table) -> Table:
    """Rows that repeat an earlier row in every column are dropped (the first is kept)."""
    if len(table) == 0:
        return table
    keys = [tuple(_key(table.columns[n][i]) for n in table.names) for i in range(len(table))]
    seen: set[tuple] = set()
    keep = np.zeros(len(table), bool)
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep[i] = True
    dropped = int((~keep).sum())
    return table.take(np.flatnonzero(keep)).noted(f"dropped {dropped} duplicate rows" if dropped else None)


def _key(value: Any) -> Any:
    return "<missing>" if value is None or (isinstance(value, float) and np.isnan(value)) else value


def drop_missing(table: Table, columns: Sequence[str], why: str) -> Table:
    """Rows missing a value in any of `columns` are dropped; `why` says which rule asked for it."""
    check_columns(table, columns)
    gone = np.zeros(len(table), bool)
    counts = {}
    for name in columns:
        missing = table.missing(name)
        counts[name] = int(missing.sum())
        gone |= missing
    if not gone.any():
        return table
    where = ", ".join(f"{n} {c}" for n, c in counts.items() if c)
    return table.take(np.flatnonzero(~gone)).noted(
        f"dropped {int(gone.sum())} rows with a missing {why} ({where})"
    )


def drop_outside(table: Table, ranges: Mapping[str, tuple[float, float]]) -> Table:
    """Rows with a value outside its column's stated range (inclusive) are dropped; a missing value
    is left to the missing-value rule."""
    check_columns(table, list(ranges))
    gone = np.zeros(len(table), bool)
    parts = []
    for name, (low, high) in ranges.items():
        if not table.is_number(name):
            raise ConfigError(f"--range {name}: the column holds text, not numbers")
        values = table.columns[name]
        out = ~np.isnan(values) & ((values < low) | (values > high))
        if out.any():
            parts.append(f"{int(out.sum())} with {name} outside {low:g}..{high:g}")
        gone |= out
    if not gone.any():
        return table
    return table.take(np.flatnonzero(~gone)).noted(
        f"dropped {int(gone.sum())} rows out of range: {'; '.join(parts)}"
    )


def interpolate(table: Table, columns: Sequence[str]) -> Table:
    """Missing numbers filled linearly between their neighbours in row order (a series in time
    order; the ends take the nearest value). Text columns are left as they are."""
    filled = dict(table.columns)
    count = 0
    for name in columns:
        values = table.columns[name]
        if values.dtype.kind != "f":
            continue
        missing = np.isnan(values)
        if missing.any() and not missing.all():
            where = np.arange(len(values))
            values = values.copy()
            values[missing] = np.interp(where[missing], where[~missing], values[~missing])
            count += int(missing.sum())
        filled[name] = values
    note = f"interpolated {count} missing values between their neighbours in row order" if count else None
    return Table(filled, table.source, table.rows_read, table.notes).noted(note)


def outlier_bounds(table: Table, columns: Sequence[str], rule: str) -> dict[str, tuple[float, float]]:
    """Per numeric column, the (low, high) a value must lie within by `rule`, from these rows."""
    bounds: dict[str, tuple[float, float]] = {}
    for name in columns:
        if not table.is_number(name):
            continue
        values = table.columns[name][~table.missing(name)]
        if values.size < 2:
            continue
        if rule == "iqr":
            q1, q3 = np.percentile(values, [25, 75])
            spread = IQR_K * (q3 - q1)
            bounds[name] = (float(q1 - spread), float(q3 + spread))
        elif rule == "zscore":
            mean, std = float(values.mean()), float(values.std())
            bounds[name] = (mean - Z_LIMIT * std, mean + Z_LIMIT * std)
    return bounds


def describe_rule(rule: str) -> str:
    return {"iqr": f"Q1 - {IQR_K} IQR .. Q3 + {IQR_K} IQR", "zscore": f"mean ± {Z_LIMIT:g} std"}.get(
        rule, rule
    )


def outside(table: Table, bounds: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """A boolean per row: True where a value lies outside its column's bounds (missing ones never)."""
    out = np.zeros(len(table), bool)
    for name, (low, high) in bounds.items():
        values = table.columns[name]
        out |= ~np.isnan(values) & ((values < low) | (values > high))
    return out


def drop_outliers(table: Table, bounds: Mapping[str, tuple[float, float]], rule: str, what: str) -> Table:
    """Rows (of `what`: "training rows") outside `bounds` are dropped, said with the rule."""
    gone = outside(table, bounds)
    if not gone.any():
        return table
    return table.take(np.flatnonzero(~gone)).noted(
        f"removed {int(gone.sum())} {what} with a value outside {describe_rule(rule)} of the training rows"
    )
