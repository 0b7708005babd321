"""Regression on a table row: the card's named values, in their units, out of a row of readings.

Its metrics are MAE, RMSE and R² of the values in the target's units (R² first: the headline that
`evaluate`, `bench` and the export bar read, a fraction where higher is better, so a quantized
file is held to R² within 0.01 of Keras as a classifier is held to a point of accuracy); MAE and
RMSE are errors (lower is better), and a quantized file's MAE may be at most 5% above Keras's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.table_features import TableSpec, bound_table
from edgekit.runtime.tasks import TASKS, MetricBar, Task


@dataclass(frozen=True)
class Value:
    """One predicted value, with its name and unit from the card."""

    name: str
    value: float
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 6), "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.name} {self.value:.6g}{' ' + self.unit if self.unit else ''}"


def regression_scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """R² (1 - residual / total sum of squares; 0 where the targets do not vary), MAE and RMSE,
    averaged over the values when there are several."""
    p = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    y = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)
    if p.shape != y.shape:
        raise DataError(f"the model gives {p.shape[1]} values per row but the data has {y.shape[1]}")
    error = p - y
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    residual = (error**2).sum(axis=0)
    r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), 0.0)
    return {
        "r2": float(r2.mean()) if len(y) else 0.0,
        "mae": float(np.abs(error).mean()) if len(y) else 0.0,
        "rmse": float(np.sqrt((error**2).mean())) if len(y) else 0.0,
    }


def card_values(card: Any, outputs: np.ndarray) -> np.ndarray:
    """Raw model outputs (the standardised target) -> values in the target's units."""
    target = TableSpec.from_dict(card.preprocess).target
    return np.asarray(outputs, np.float64) if target is None else target.to_units(outputs)


@TASKS.register()
class Regress(Task):
    name = "regress"
    accepts = "table"
    dataset = "table"
    lower_is_better = frozenset({"mae", "rmse"})
    quantized_bars = (MetricBar("mae", 0.05, relative=True),)

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        return regression_scores(card_values(card, outputs[0]), np.asarray(y))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec, self._shape = bound_table(self.card, self.inputs)
        target = self.spec.target
        self._center = target.center if target else 0.0
        self._scale = target.scale if target else 1.0
        self._names = tuple(self.card.labels) or ((target.name,) if target else ("value",))
        self._unit = target.unit if target else ""

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        row = self.spec.encode_row(raw, getattr(raw, "where", ""))
        return [self.feed(row.reshape(self._shape))]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Value]:
        values = self.scores(outputs).reshape(-1).astype(np.float64) * self._scale + self._center
        return [Value(name, float(v), self._unit) for name, v in zip(self._names, values, strict=False)]
