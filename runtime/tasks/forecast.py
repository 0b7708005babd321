"""Forecasting a series: the next `horizon` readings from a window of past ones (a sensor on a
smart-home hub, traffic counts at a junction).

What a call takes:
- a whole window (an array or list of readings, oldest first; `evaluate`, `bench`, export
  validation and a line of several numbers): forecast from it alone. Fewer readings than the
  model's window is one sentence; more, and the last `window` are used.
- one reading (a number, a CSV row holding the card's column, a line of one number or
  `name=value`): it joins a rolling window of the last `window` readings, and each reading after
  the window is full gives a forecast. Until then the result says how many readings it has. A
  missing reading (an empty field) repeats the last one, as the model cannot wait for the
  interpolation training used: the result counts such readings in the window.

Its metrics (`runtime/series.py`'s `forecast_scores`) lead with the skill against the seasonal-naive
forecast, 1 - MAE / naive MAE, a fraction where higher is better: `evaluate`, `bench` and the
export bar read it, a quantized file held to a point of it as a classifier is to a point of
accuracy. MAE and RMSE (in the series' units) are errors, lower is better; a quantized file's MAE
may be at most 5% above Keras's."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError, SourceError
from edgekit.runtime.series import SeriesSpec, forecast_scores
from edgekit.runtime.table import is_missing
from edgekit.runtime.tasks import TASKS, MetricBar, Task


@dataclass(frozen=True)
class Forecast:
    """The next readings of the series, the first one step after the window's last."""

    name: str
    values: tuple[float, ...]
    unit: str = ""
    filled: int = 0  # readings of the window that were missing and repeat the one before

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "forecast": [round(v, 6) for v in self.values]}
        if self.unit:
            out["unit"] = self.unit
        if self.filled:
            out["filled"] = self.filled
        return out

    def __str__(self) -> str:
        shown = ", ".join(f"{v:.6g}" for v in self.values)
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} next {len(self.values)}: {shown}{unit}"


@dataclass(frozen=True)
class Waiting:
    """A reading taken while the rolling window fills: no forecast yet."""

    readings: int
    window: int

    def to_dict(self) -> dict[str, Any]:
        return {"event": "waiting", "readings": self.readings, "window": self.window}

    def __str__(self) -> str:
        return f"waiting: {self.readings} of the {self.window} readings a forecast needs"


def card_forecasts(card: Any, outputs: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Raw model outputs -> readings in the series' units, after each window's last reading."""
    return SeriesSpec.from_dict(card.preprocess).decode(outputs, last)


@TASKS.register()
class ForecastTask(Task):
    name = "forecast"
    # what the live sources give: rows of named readings (a CSV's, a line's); whole windows and
    # plain numbers are taken too (the card's input kind, "series", makes the model's input)
    accepts = "table"
    dataset = "series"
    lower_is_better = frozenset({"mae", "rmse", "naive_mae"})
    quantized_bars = (MetricBar("mae", 0.05, relative=True),)

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        return forecast_scores(card_forecasts(card, outputs[0], y["last"]), y)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = SeriesSpec.from_dict(self.card.preprocess)
        info = self.inputs[0]
        self._shape = tuple(1 if s is None else s for s in info.shape)
        if int(np.prod(self._shape)) != self.spec.window:
            raise DataError(
                f"the card's window holds {self.spec.window} readings but the model input {info.shape} "
                f"takes {int(np.prod(self._shape))}"
            )
        self._recent: deque[float] = deque(maxlen=self.spec.window)
        self._filled: deque[bool] = deque(maxlen=self.spec.window)
        self._last = 0.0
        self._ready = True
        self._gaps = 0

    # -- what a call holds ---------------------------------------------------------------------

    def _reading(self, raw: Any) -> float | np.ndarray:
        """One reading (a float) or a whole window (an array) out of what a source gave."""
        if type(raw) is np.ndarray and raw.ndim == 1 and raw.dtype == np.float64:
            return raw  # a window as scripts hold it: no copy, and no ABC check before it
        if isinstance(raw, Mapping):
            where = getattr(raw, "where", "") or "the input"
            if self.spec.column in raw:
                return self._value(raw[self.spec.column], where)
            numbers = getattr(raw, "numbers", None)
            if numbers:
                return numbers[0] if len(numbers) == 1 else np.asarray(numbers, np.float64)
            named = ", ".join(map(str, raw)) or "no named values"
            raise SourceError(
                f"{where} has no {self.spec.column!r}, which this model forecasts (it holds {named})"
            )
        if isinstance(raw, str):
            return self._value(raw, "the input")
        if isinstance(raw, int | float | np.integer | np.floating):
            return float(raw)
        return np.asarray(raw, dtype=np.float64).reshape(-1)

    def _value(self, value: Any, where: str) -> float:
        if value is None or (isinstance(value, str) and is_missing(value)):
            return float("nan")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: {self.spec.column!r} holds {value!r}, which is not a number") from None

    def _whole(self, window: np.ndarray) -> np.ndarray:
        """A window given whole: its last `window` readings, gaps interpolated as in training."""
        need = self.spec.window
        if len(window) < need:
            raise DataError(
                f"the window holds {len(window)} readings, but this model forecasts from the last "
                f"{need}: give at least {need}"
            )
        window = window[-need:]
        self._gaps = 0
        total = window.sum()
        if total != total:  # a NaN somewhere (rare): one sum finds it, the work is done only then
            missing = np.isnan(window)
            if missing.all():
                raise DataError("the window holds no readings, only missing values")
            where = np.arange(need)
            window = window.copy()
            window[missing] = np.interp(where[missing], where[~missing], window[~missing])
            self._gaps = int(missing.sum())
        return window

    def _roll(self, value: float) -> np.ndarray:
        """A reading onto the rolling window; the window so far, padded at its start while it fills."""
        missing = np.isnan(value)
        if missing:
            if not self._recent:
                raise DataError(f"the first reading of {self.spec.column!r} is missing: nothing to repeat")
            value = self._recent[-1]
        self._recent.append(float(value))
        self._filled.append(bool(missing))
        window = np.fromiter(self._recent, np.float64, len(self._recent))
        self._ready = len(window) == self.spec.window
        self._gaps = sum(self._filled)
        if not self._ready:  # the model still runs (a call is one inference); its answer is not shown
            window = np.concatenate([np.full(self.spec.window - len(window), window[0]), window])
        return window

    def reset(self) -> None:
        """Forget the rolling window: a new series starts."""
        self._recent.clear()
        self._filled.clear()

    # -- the task ------------------------------------------------------------------------------

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        got = self._reading(raw)
        if isinstance(got, np.ndarray) and got.ndim == 1 and got.size != 1:
            self._ready = True
            window = self._whole(got)
        else:
            window = self._roll(float(np.asarray(got).reshape(-1)[0]))
        last = self._last = float(window[-1])
        # `SeriesSpec.encode` for one window, with no batch to make and take apart
        x = ((window - last) / self.spec.scale).astype(np.float32).reshape(self._shape)
        return [self.feed(x)]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Forecast | Waiting]:
        if not self._ready:
            return [Waiting(len(self._recent), self.spec.window)]
        scale, last = self.spec.scale, self._last
        # a few values: as Python numbers, cheaper than numpy's calls on them
        values = tuple(v * scale + last for v in self.output(outputs).reshape(-1).tolist())
        return [Forecast(self.spec.column, values, self.spec.unit, self._gaps)]
