"""A table's rows -> the model's input, by the card's `preprocess` (kind "table"), numpy only.

`TableSpec.fit` learns from the training part only: each number column's fill value (by the
missing-value rule) and its scaling (standardise: mean and standard deviation; min-max: minimum
and range), each text column's vocabulary (one-hot, in sorted order; a value never seen in
training is all zeros) and most frequent value, and a numeric target's mean and spread (a
regression trains on the standardised target; the task turns outputs back into its units). All of
it goes into the card, so training, export validation, `evaluate` and the device compute the
same numbers."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError, SourceError
from edgekit.runtime.table import is_missing

NUMBER, CATEGORY = "number", "category"


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: a number, scaled as `(value - center) / scale`, or a category, one-hot
    over `vocabulary`. `fill`: what a missing value becomes (None: a row missing it is not
    predicted, as training dropped such rows)."""

    name: str
    type: str = NUMBER
    unit: str = ""
    fill: float | str | None = None
    center: float = 0.0
    scale: float = 1.0
    vocabulary: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.type == NUMBER else len(self.vocabulary)


@dataclass(frozen=True)
class TargetSpec:
    """What the model predicts: a number (trained on `(value - center) / scale`) or a category."""

    name: str
    type: str = NUMBER
    unit: str = ""
    center: float = 0.0
    scale: float = 1.0

    def to_units(self, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs as values in the target's units."""
        return np.asarray(outputs, dtype=np.float64) * self.scale + self.center

    def standardise(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.center) / self.scale).astype(np.float32)


@dataclass(frozen=True)
class TableSpec:
    columns: tuple[ColumnSpec, ...]
    target: TargetSpec | None = None
    missing: str = "drop"
    scale: str = "standard"

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        def column(c: ColumnSpec) -> dict[str, Any]:
            d = asdict(c)
            d["vocabulary"] = list(c.vocabulary)
            if c.type == CATEGORY:
                d.pop("center"), d.pop("scale")
            else:
                d.pop("vocabulary")
            return d

        out: dict[str, Any] = {
            "kind": "table",
            "columns": [column(c) for c in self.columns],
            "missing": self.missing,
            "scale": self.scale,
            "width": self.width,
        }
        if self.target is not None:
            out["target"] = asdict(self.target)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableSpec:
        try:
            columns = tuple(
                ColumnSpec(
                    c["name"],
                    c.get("type", NUMBER),
                    c.get("unit", ""),
                    c.get("fill"),
                    float(c.get("center", 0.0)),
                    float(c.get("scale", 1.0)),
                    tuple(c.get("vocabulary", ())),
                )
                for c in d["columns"]
            )
            t = d.get("target")
            target = (
                None if not t else TargetSpec(**{k: t[k] for k in t if k in TargetSpec.__dataclass_fields__})
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"the card's table preprocessing is malformed ({e})") from None
        return cls(columns, target, str(d.get("missing", "drop")), str(d.get("scale", "standard")))

    # -- fitting -------------------------------------------------------------------------------

    @classmethod
    def fit(cls, rows: np.ndarray, y: np.ndarray | None, declared: Mapping[str, Any]) -> TableSpec:
        """Fill values, scaling and vocabularies from the training rows (a structured array) and,
        for a numeric target, its mean and spread from `y`; the choices from `declared` (the
        dataset's: which columns, the missing-value rule, the scaling)."""
        missing, scaling = str(declared.get("missing", "drop")), str(declared.get("scale", "standard"))
        units = dict(declared.get("units", {}))
        columns = []
        for name in rows.dtype.names or ():
            values = rows[name]
            if values.dtype.kind == "f":
                columns.append(_fit_number(name, values, missing, scaling, units.get(name, "")))
            else:
                columns.append(_fit_category(name, values, missing, units.get(name, "")))
        target = None
        t = declared.get("target")
        if t:
            target = TargetSpec(t["name"], t.get("type", NUMBER), t.get("unit", ""))
            if target.type == NUMBER and y is not None and len(y):
                values = np.asarray(y, dtype=np.float64)
                std = float(values.std())
                target = TargetSpec(target.name, NUMBER, target.unit, float(values.mean()), std or 1.0)
        return cls(tuple(columns), target, missing, scaling)

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, rows: Any) -> np.ndarray:
        """A batch of rows (a structured array, or mappings from column name to value or text)
        -> (N, width) float32."""
        if isinstance(rows, np.ndarray) and rows.dtype.names:
            missing = [c.name for c in self.columns if c.name not in rows.dtype.names]
            if missing:
                raise DataError(f"the rows have no column {missing[0]!r}, which the model takes")
            out = np.empty((len(rows), self.width), np.float32)
            at = 0
            for c in self.columns:
                out[:, at : at + c.width] = self._encode_column(c, rows[c.name])
                at += c.width
            return out
        return np.stack([self.encode_row(row) for row in rows]) if len(rows) else np.zeros((0, self.width))

    def _encode_column(self, c: ColumnSpec, values: np.ndarray) -> np.ndarray:
        if c.type == NUMBER:
            x = np.asarray(values, dtype=np.float64)
            missing = np.isnan(x)
            if missing.any():
                if c.fill is None:
                    raise DataError(f"column {c.name!r} has missing values, and this model takes none")
                x = np.where(missing, float(c.fill), x)
            return ((x - c.center) / c.scale)[:, None]
        index = {v: i for i, v in enumerate(c.vocabulary)}
        out = np.zeros((len(values), c.width), np.float32)
        for row, v in enumerate(values):
            v = c.fill if v is None else v
            if v is None:
                raise DataError(f"column {c.name!r} has missing values, and this model takes none")
            j = index.get(str(v))
            if j is not None:
                out[row, j] = 1.0
        return out

    def encode_row(self, row: Mapping[str, Any], where: str = "") -> np.ndarray:
        """One row (column name -> a number or its text) -> (width,) float32. A column the model
        needs that the row lacks stops the run (SourceError); a value that cannot be used (text
        where a number goes, a missing value with no fill) fails this row only (DataError)."""
        out = np.zeros(self.width, np.float32)
        at = 0
        prefix = f"{where}: " if where else ""
        for c in self.columns:
            try:
                value = row[c.name]
            except KeyError:
                raise SourceError(
                    f"{where or 'the input'} has no column {c.name!r}, which the model needs "
                    f"(it reads {', '.join(self.names)})"
                ) from None
            if isinstance(value, str) or value is None:
                value = None if is_missing(value) else value.strip()
            if c.type == NUMBER:
                if value is None or (isinstance(value, float) and value != value):
                    if c.fill is None:
                        raise DataError(
                            f"{prefix}column {c.name!r} is missing, and this model takes no missing values"
                        )
                    value = c.fill
                try:
                    out[at] = (float(value) - c.center) / c.scale
                except (TypeError, ValueError):
                    raise DataError(
                        f"{prefix}column {c.name!r} holds {value!r}, which is not a number"
                    ) from None
            else:
                value = c.fill if value is None else value
                if value is None:
                    raise DataError(
                        f"{prefix}column {c.name!r} is missing, and this model takes no missing values"
                    )
                with contextlib.suppress(ValueError):  # a category never seen in training: all zeros
                    out[at + c.vocabulary.index(str(value))] = 1.0
            at += c.width
        return out

    # -- made-up rows --------------------------------------------------------------------------

    def generate(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` made-up rows (a structured array): numbers around each column's fitted centre and
        spread, categories drawn from the vocabulary. Enough to compare an artifact with Keras."""
        rng = np.random.default_rng(seed)
        rows = np.empty(n, dtype=[(c.name, "f8" if c.type == NUMBER else "O") for c in self.columns])
        for c in self.columns:
            if c.type == NUMBER:
                spread = c.scale if self.scale != "minmax" else c.scale / 2
                middle = c.center if self.scale != "minmax" else c.center + c.scale / 2
                rows[c.name] = rng.normal(middle, spread or 1.0, n)
            else:
                rows[c.name] = rng.choice(np.array(c.vocabulary or ("",), dtype=object), n)
        return rows

    def blank(self) -> dict[str, Any]:
        """One neutral row: every number at its centre, every category its fill or first value."""
        return {
            c.name: (c.center if c.type == NUMBER else (c.fill or (c.vocabulary[0] if c.vocabulary else "")))
            for c in self.columns
        }


def _fit_number(name: str, values: np.ndarray, missing: str, scaling: str, unit: str) -> ColumnSpec:
    known = values[~np.isnan(values)]
    if known.size == 0:
        raise DataError(f"column {name!r} has no values in the training rows")
    fill = {"mean": float(known.mean()), "median": float(np.median(known)), "zero": 0.0}.get(missing)
    if scaling == "standard":
        center, scale = float(known.mean()), float(known.std())
    elif scaling == "minmax":
        center, scale = float(known.min()), float(known.max() - known.min())
    else:
        center, scale = 0.0, 1.0
    return ColumnSpec(name, NUMBER, unit, fill, center, scale or 1.0)


def _fit_category(name: str, values: np.ndarray, missing: str, unit: str) -> ColumnSpec:
    known = [str(v) for v in values if v is not None]
    if not known:
        raise DataError(f"column {name!r} has no values in the training rows")
    vocabulary, counts = np.unique(np.array(known, dtype=object), return_counts=True)
    fill = None if missing in ("drop", "interpolate") else str(vocabulary[int(np.argmax(counts))])
    return ColumnSpec(name, CATEGORY, unit, fill, vocabulary=tuple(str(v) for v in vocabulary))


def table_width(preprocess: Mapping[str, Any], default: int) -> int:
    """How many values a fitted table preprocess makes per row (`default` before it is fitted)."""
    return int(preprocess.get("width", default)) if preprocess.get("columns") else default


def rows_of(raw: Sequence[Any]) -> Any:
    """Rows as `TableSpec.encode` takes them: a structured array as it is, else a list."""
    return raw if isinstance(raw, np.ndarray) and raw.dtype.names else list(raw)


def bound_table(card: Any, inputs: Sequence[Any]) -> tuple[TableSpec, tuple[int, ...]]:
    """The card's fitted table and the model input's shape (batch 1) it feeds; one sentence when the
    two disagree in width (a card written for another model)."""
    spec = TableSpec.from_dict(card.preprocess)
    info = inputs[0]
    shape = tuple(1 if s is None else s for s in info.shape)
    if int(np.prod(shape)) != spec.width:
        raise DataError(
            f"the card's table makes {spec.width} values per row but the model input "
            f"{info.shape} takes {int(np.prod(shape))}"
        )
    return spec, shape
