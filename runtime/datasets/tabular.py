"""Tables as datasets: a CSV file (yours, or one shipped with edgekit) read in chunks, cleaned by the
course's steps (each reported), its target read as classes or numbers, and split 70/10/20.

A table's `--data` is one text, so that a card can name it and `edgekit export` and `evaluate`
read the same rows again: the file, then its options as a query, e.g.

    prices.csv?target=price&features=area,rooms,town&categorical=town&missing=mean&outliers=iqr

`edgekit train --data prices.csv --target price --missing mean ...` writes it for you. The shipped
tables (`anes96`, `grunfeld`) are loaders of their own; `--data shipped?target=PID` reads a
shipped table with other options. numpy only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.cleaning import (
    Cleaning,
    drop_duplicates,
    drop_missing,
    drop_outliers,
    drop_outside,
    interpolate,
    outlier_bounds,
    outside,
)
from edgekit.runtime.datasets import DATASETS, HELDOUT_SEED, SHIPPED, Dataset, Split
from edgekit.runtime.table import MAX_ROWS, Table, csv_rows, read_table

HELDOUT_SHARE = 0.2  # the course's test part
MAX_CLASSES = 20  # an integer target with at most this many values is read as classes ("auto")
CLASSES = ("auto", "yes", "no")
SPEC_KEYS = (
    "target", "features", "categorical", "units", "duplicates", "missing", "range", "outliers",
    "scale", "classes", "max_rows",
)  # fmt: skip


@dataclass(frozen=True)
class TableSource:
    """Which rows of which file, and how they are cleaned: what `--data` says for a table."""

    path: str  # a CSV file (.csv or .csv.gz), or "shipped" for the loader's own table
    target: str | None = None
    features: tuple[str, ...] = ()  # empty: every column but the target
    categorical: tuple[str, ...] = ()  # read as text (one-hot), whatever they hold
    units: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cleaning: Cleaning = Cleaning()
    classes: str = "auto"  # the target as class labels: "auto" (text, or few whole numbers), "yes", "no"
    max_rows: int = MAX_ROWS

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", MappingProxyType(dict(self.units)))
        if self.classes not in CLASSES:
            raise ConfigError(f"classes={self.classes!r}: use auto, yes (class labels) or no (numbers)")
        if self.max_rows < 10:
            raise ConfigError("max_rows must be at least 10")
        if self.target is not None and self.target in self.features:
            raise ConfigError(f"the target {self.target!r} cannot also be a feature")

    @classmethod
    def parse(cls, spec: str) -> TableSource:
        """`path?key=value&...` -> a TableSource; an unknown key or a bad value is one sentence."""
        path, _, query = spec.partition("?")
        options: dict[str, Any] = {}
        cleaning: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key not in SPEC_KEYS:
                raise ConfigError(
                    f"--data {spec!r}: unknown option {key!r} (it takes {', '.join(SPEC_KEYS)})"
                )
            if key in ("features", "categorical"):
                options[key] = tuple(v.strip() for v in value.split(",") if v.strip())
            elif key == "units":
                options[key] = dict(_pair(p, ":", "units=COLUMN:UNIT") for p in value.split(",") if p)
            elif key == "range":
                cleaning["ranges"] = dict(_range(p) for p in value.split(";") if p)
            elif key == "duplicates":
                if value not in ("drop", "keep"):
                    raise ConfigError(f"duplicates={value!r}: use drop or keep")
                cleaning["duplicates"] = value == "drop"
            elif key in ("missing", "outliers", "scale"):
                cleaning[key] = value
            elif key == "max_rows":
                try:
                    options[key] = int(value)
                except ValueError:
                    raise ConfigError(f"max_rows={value!r} is not a whole number") from None
            else:
                options[key] = value or None
        return cls(path, cleaning=Cleaning(**cleaning), **options)

    def spec(self) -> str:
        """The text `parse` reads back: what the card's dataset `source` holds."""
        c = self.cleaning
        pairs: list[tuple[str, str]] = []
        if self.target:
            pairs.append(("target", self.target))
        if self.features:
            pairs.append(("features", ",".join(self.features)))
        if self.categorical:
            pairs.append(("categorical", ",".join(self.categorical)))
        if self.units:
            pairs.append(("units", ",".join(f"{k}:{v}" for k, v in self.units.items())))
        defaults = Cleaning()
        if c.duplicates != defaults.duplicates:
            pairs.append(("duplicates", "drop" if c.duplicates else "keep"))
        for key in ("missing", "outliers", "scale"):
            if getattr(c, key) != getattr(defaults, key):
                pairs.append((key, getattr(c, key)))
        if c.ranges:
            pairs.append(("range", ";".join(f"{k}:{lo:g}..{hi:g}" for k, (lo, hi) in c.ranges.items())))
        if self.classes != "auto":
            pairs.append(("classes", self.classes))
        if self.max_rows != MAX_ROWS:
            pairs.append(("max_rows", str(self.max_rows)))
        query = urlencode(pairs, safe=",:;.")
        return f"{self.path}?{query}" if query else self.path

    def over(self, given: TableSource) -> TableSource:
        """`given`'s options over these (a shipped table's defaults), where `given` sets them."""
        changed = {
            f: getattr(given, f) for f in ("target", "features", "categorical", "units") if getattr(given, f)
        }
        if given.cleaning != Cleaning():
            changed["cleaning"] = given.cleaning
        if given.classes != "auto":
            changed["classes"] = given.classes
        if given.max_rows != MAX_ROWS:
            changed["max_rows"] = given.max_rows
        if "target" in changed and "features" not in changed:
            changed["features"] = ()  # another target: every other column, unless named
        return replace(self, **changed)


def _pair(text: str, sep: str, form: str) -> tuple[str, str]:
    key, found, value = text.partition(sep)
    if not found or not key.strip():
        raise ConfigError(f"{text!r}: give {form}")
    return key.strip(), value.strip()


def _range(text: str) -> tuple[str, tuple[float, float]]:
    name, bounds = _pair(text, ":", "range=COLUMN:LOW..HIGH")
    low, found, high = bounds.partition("..")
    try:
        if not found:
            raise ValueError
        return name, (float(low), float(high))
    except ValueError:
        raise ConfigError(f"range {text!r}: give COLUMN:LOW..HIGH, such as humidity:0..100") from None


def load_table(source: TableSource, name: str = "table") -> Dataset:
    """Read, clean, encode the target and split: the Dataset a table recipe trains on, its
    cleaning said in `notes` (and in the card), its choices in `preprocess` (fitted by the recipe
    on the training part)."""
    path = Path(source.path)
    if source.target is None:
        header, _ = csv_rows(path)
        raise ConfigError(
            f"say which column of {path.name} to predict with --target (its columns: {', '.join(header)})"
        )
    header, _ = csv_rows(path)
    if source.target not in header:
        raise DataError(
            f"{path} has no column {source.target!r} to predict: its columns are {', '.join(header)}"
        )
    features = list(source.features) or [h for h in header if h != source.target]
    table = read_table(path, [*features, source.target], text=source.categorical, max_rows=source.max_rows)
    table = clean(table, source, features)
    kind, labels, y = read_target(table, source)
    heldout = heldout_index(y if kind == "category" else None, len(table))
    mask = np.zeros(len(table), bool)
    mask[heldout] = True
    order = np.random.default_rng(HELDOUT_SEED + 1).permutation(np.flatnonzero(~mask))
    train, held = table.take(order), table.take(np.flatnonzero(mask))
    train_y, held_y = y[order], y[mask]
    c = source.cleaning
    if c.outliers != "none":  # bounds from the training rows; the held-out rows stay as they are
        bounds = outlier_bounds(train, [f for f in features if train.is_number(f)], c.outliers)
        train_y = train_y[~outside(train, bounds)]
        train = drop_outliers(train, bounds, c.outliers, "training rows")
    if len(train) < 2 or len(held) < 1:
        raise DataError(f"{path} has {len(table)} usable rows after cleaning: too few to train and test on")
    declared = {
        "kind": "table",
        "missing": c.missing,
        "scale": c.scale,
        "units": {k: v for k, v in source.units.items() if k in features},
        "target": {"name": source.target, "type": kind, "unit": source.units.get(source.target, "")},
    }
    description = (
        f"{path.name}: {len(table)} rows after cleaning, {len(features)} columns -> {source.target} "
        f"({'classes ' + ', '.join(labels[:8]) + (' ...' if len(labels) > 8 else '') if kind == 'category' else 'a number'})"
    )
    return Dataset(
        name,
        source.spec(),
        description,
        labels,
        Split(train.select(features).records(), train_y),
        Split(held.select(features).records(), held_y),
        preprocess=declared,
        notes=train.notes,
    )


def clean(table: Table, source: TableSource, features: list[str]) -> Table:
    """The course's steps that need no fitting, on the whole table, in order: duplicates, a missing
    target, stated ranges, then missing values (dropped, interpolated, or counted for filling)."""
    c = source.cleaning
    if c.duplicates:
        table = drop_duplicates(table)
    table = drop_missing(table, [source.target], "target")
    if c.ranges:
        table = drop_outside(table, c.ranges)
    if c.missing == "drop":
        table = drop_missing(table, features, "value (--missing drop)")
    elif c.missing == "interpolate":
        table = interpolate(table, features)
    else:
        counts = {f: int(table.missing(f).sum()) for f in features}
        if any(counts.values()):
            where = ", ".join(f"{f} {n}" for f, n in counts.items() if n)
            table = table.noted(
                f"{sum(counts.values())} missing values ({where}) filled by --missing {c.missing} of the "
                "training part (the fill values are in the card)"
            )
    if len(table) == 0:
        raise DataError(f"{table.source} has no rows left after cleaning: {'; '.join(table.notes)}")
    return table


def read_target(table: Table, source: TableSource) -> tuple[str, tuple[str, ...], np.ndarray]:
    """(kind "category" or "number", the labels, y): class indices over sorted labels, or the
    numbers (float32) with the target's name as the one label."""
    values = table.columns[source.target]
    name = source.target
    if values.dtype.kind == "f":
        whole = np.all(np.mod(values, 1) == 0)
        classes = source.classes == "yes" or (
            source.classes == "auto" and whole and len(np.unique(values)) <= MAX_CLASSES
        )
        if not classes:
            return "number", (name,), values.astype(np.float32)
        text = np.array([f"{v:g}" for v in values], dtype=object)
    else:
        if source.classes == "no":
            raise DataError(f"column {name!r} holds text, not numbers: a regression predicts a number")
        text = values
    labels = sorted(set(text), key=_natural)
    if len(labels) < 2:
        raise DataError(
            f"column {name!r} holds one class only ({labels[0]!r}): there is nothing to tell apart"
        )
    index = {label: i for i, label in enumerate(labels)}
    return "category", tuple(labels), np.array([index[v] for v in text], dtype=np.int64)


def _natural(label: str) -> tuple[int, float | str]:
    try:
        return 0, float(label)
    except ValueError:
        return 1, label


def heldout_index(classes: np.ndarray | None, n: int) -> np.ndarray:
    """A fixed 20% to hold out: of each class (classes), or of the rows (numbers)."""
    rng = np.random.default_rng(HELDOUT_SEED)
    if classes is None:
        return np.sort(rng.permutation(n)[: max(1, round(n * HELDOUT_SHARE))])
    picks = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        picks.append(rng.permutation(members)[: round(len(members) * HELDOUT_SHARE)])
    return np.sort(np.concatenate(picks)).astype(np.int64)


def shipped_table(name: str) -> Path:
    """A CSV shipped with edgekit (`runtime/datasets/data/NAME.csv`): see its README for the source."""
    return SHIPPED / f"{name}.csv"


def table_loader(name: str, default: TableSource | None):
    """The loader of a table: `default` (a shipped file and its options) unless --data names
    another file; --data "shipped?..." changes the shipped table's options."""

    def load(data: str | None) -> Dataset:
        if data is None or data == "shipped" or data.startswith("shipped?"):
            if default is None:
                raise ConfigError(
                    "give a table with --data FILE.csv --target COLUMN (or one of the shipped tables: "
                    "anes96, grunfeld)"
                )
            given = TableSource.parse(data or "shipped")
            return load_table(replace(default.over(given), path=default.path), name)
        return load_table(TableSource.parse(data), "table")

    return load


ANES96 = TableSource(str(shipped_table("anes96")), target="vote", categorical=("educ",))
GRUNFELD = TableSource(
    str(shipped_table("grunfeld")),
    target="invest",
    features=("value", "capital"),
    units=MappingProxyType({"invest": "million USD", "value": "million USD", "capital": "million USD"}),
)
DATASETS.add(table_loader("table", None), "table")
DATASETS.add(table_loader("anes96", ANES96), "anes96")
DATASETS.add(table_loader("grunfeld", GRUNFELD), "grunfeld")


def table_data(
    data: str | None,
    *,
    target: str | None = None,
    features: tuple[str, ...] = (),
    categorical: tuple[str, ...] = (),
    units: Mapping[str, str] | None = None,
    cleaning: Cleaning | None = None,
    classes: str = "auto",
) -> str:
    """The `--data` text for a table and its options (what `edgekit train --target ...` passes on):
    `data` a CSV file, or None for the recipe's shipped table."""
    base = TableSource.parse(data or "shipped")
    given = TableSource(
        base.path,
        target=target or base.target,
        features=features or base.features,
        categorical=categorical or base.categorical,
        units={**base.units, **(units or {})},
        cleaning=cleaning if cleaning is not None else base.cleaning,
        classes=classes if classes != "auto" else base.classes,
        max_rows=base.max_rows,
    )
    return given.spec()
