"""A series of readings in time order, as a forecaster sees it (numpy only).

A forecaster reads a window of the last `window` readings and gives the next `horizon` ones. The
window goes into the model relative to its own last reading and divided by one spread fitted on
the training part (`SeriesSpec.encode`): a series that drifts (CO2 rises every year) leaves the
training range in the held-out years, but its changes over a window do not, so the model, and an
int8 file's calibrated ranges, see numbers of the size they were fitted on. The model's outputs
are the next readings on the same scale, relative to the same last reading (`SeriesSpec.decode`).

Time: a column of dates or times (`YYYYMMDD`, ISO 8601 dates and times, or plain increasing
numbers) orders the rows and gives the step between readings, from which the season of the
seasonal-naive forecast is inferred (hourly: 24, daily: 7, weekly: 52, monthly: 12).

The baseline every forecast is scored against is the seasonal-naive one: each of the next values
is the reading one season earlier (with a season of 1: the last reading, the plain naive forecast).
`forecast_scores` gives MAE, RMSE, the naive forecast's MAE and the skill, 1 - MAE / naive MAE
(above 0: better than the baseline; 1: perfect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError

# names a time column goes by (compared lower-cased), tried before any other column is parsed
TIME_NAMES = (
    "date", "time", "timestamp", "datetime", "ds", "t", "ts", "when", "epoch", "seconds", "year", "month",
    "week", "day", "hour",
)  # fmt: skip
DAY = 86_400.0
# (step between readings in seconds, the season it implies), the step matched within 10%
SEASONS = ((60.0, 60), (3_600.0, 24), (DAY, 7), (7 * DAY, 52), (30.44 * DAY, 12), (91.3 * DAY, 4))
# the targets of one window: the next readings, the seasonal-naive forecast of them, the last reading
TARGET_FIELDS = ("future", "naive", "last")


@dataclass(frozen=True)
class SeriesSpec:
    """What the card says about a forecaster's input and output (preprocess kind "series")."""

    column: str  # the series' name: the CSV column it was read from
    window: int  # readings in, the oldest first
    horizon: int  # readings out, the next first
    season: int = 1  # readings per season: the seasonal-naive baseline's lag
    unit: str = ""
    time: str = ""  # the time column the rows were ordered by ("" when the file's row order was used)
    step: float | None = None  # seconds between readings, from the time column (None: not known)
    scale: float = 1.0  # the spread that window changes are divided by, fitted on the training part

    def __post_init__(self) -> None:
        if self.window < 2:
            raise DataError(f"a forecaster's window needs at least 2 readings, not {self.window}")
        if self.horizon < 1:
            raise DataError(f"a forecaster's horizon needs at least 1 reading, not {self.horizon}")
        if self.season < 1:
            raise DataError(f"a season is at least 1 reading, not {self.season}")
        if not np.isfinite(self.scale) or self.scale <= 0:
            raise DataError(f"the card's series scale must be a positive number, not {self.scale}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "series", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesSpec:
        try:
            return cls(
                column=str(d["column"]),
                window=int(d["window"]),
                horizon=int(d["horizon"]),
                season=int(d.get("season", 1)),
                unit=str(d.get("unit", "")),
                time=str(d.get("time", "")),
                step=None if d.get("step") is None else float(d["step"]),
                scale=float(d.get("scale", 1.0)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"the card's series preprocessing is malformed ({e!r})") from None

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Windows (N, >= window) of readings -> the model's input (N, window, 1): each window's
        last `window` readings, less its last reading, over the fitted scale."""
        w = np.asarray(windows, dtype=np.float64)[:, -self.window :]
        return ((w - w[:, -1:]) / self.scale)[..., None].astype(np.float32)

    def decode(self, outputs: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The model's outputs (N, horizon) -> readings in the series' units, after each window's
        last reading `last` (N,)."""
        out = np.asarray(outputs, dtype=np.float64).reshape(len(last), -1)
        return out * self.scale + np.asarray(last, dtype=np.float64)[:, None]

    def targets(self, y: np.ndarray) -> np.ndarray:
        """A split's targets (`window_targets`) -> what the model is trained to give (N, horizon)."""
        return ((y["future"] - y["last"][:, None]) / self.scale).astype(np.float32)


def target_dtype(horizon: int) -> np.dtype:
    return np.dtype([("future", "f8", (horizon,)), ("naive", "f8", (horizon,)), ("last", "f8")])


def seasonal_naive(values: np.ndarray, t: int, horizon: int, season: int) -> np.ndarray:
    """The seasonal-naive forecast made at `t` (readings 0..t-1 seen) of readings t..t+horizon-1:
    each is the reading a whole number of seasons before it, the latest one seen."""
    h = np.arange(horizon)
    back = season * (h // season + 1)  # the nearest whole number of seasons that reaches the past
    return values[t + h - back]


def windows(values: np.ndarray, window: int, horizon: int, season: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows (N, window) float32, targets (N,) of `target_dtype`): one per forecast origin t,
    in time order, each origin with a full window and a seasonal-naive forecast behind it."""
    values = np.asarray(values, dtype=np.float64)
    first = max(window, season)
    origins = np.arange(first, len(values) - horizon + 1)
    if len(origins) < 1:
        raise DataError(
            f"the series has {len(values)} readings: too few for a window of {window}, a season of "
            f"{season} and {horizon} to forecast (it needs at least {first + horizon})"
        )
    x = np.stack([values[t - window : t] for t in origins]).astype(np.float32)
    y = np.empty(len(origins), dtype=target_dtype(horizon))
    y["future"] = np.stack([values[t : t + horizon] for t in origins])
    y["naive"] = np.stack([seasonal_naive(values, t, horizon, season) for t in origins])
    y["last"] = values[origins - 1]
    return x, y


def forecast_scores(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Skill against the seasonal-naive forecast first (the headline: a fraction, higher is better),
    then MAE and RMSE of the forecasts and the naive forecast's MAE, in the series' units, over
    every window and every step ahead."""
    future = np.asarray(y["future"], dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64).reshape(future.shape)
    if not len(future):
        return {"skill": 0.0, "mae": 0.0, "rmse": 0.0, "naive_mae": 0.0}
    error = p - future
    mae = float(np.abs(error).mean())
    naive_mae = float(np.abs(np.asarray(y["naive"], np.float64) - future).mean())
    return {
        "skill": 1.0 - mae / naive_mae if naive_mae > 0 else 0.0,
        "mae": mae,
        "rmse": float(np.sqrt((error**2).mean())),
        "naive_mae": naive_mae,
    }


# -- time -------------------------------------------------------------------------------------------


def parse_time(text: Any) -> float | None:
    """One timestamp as seconds: YYYYMMDD (a number or text), an ISO 8601 date or date-time, or a
    plain number (seconds, or any unit that grows with time). None: not a time."""
    if text is None:
        return None
    if isinstance(text, float | int | np.floating | np.integer):
        value = float(text)
        if not np.isfinite(value):
            return None
        return _yyyymmdd(int(value)) if value.is_integer() and 1_000_01_01 <= value <= 9999_12_31 else value
    s = str(text).strip()
    if not s:
        return None
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        return parse_time(value)
    try:
        when = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _yyyymmdd(value: int) -> float | None:
    try:
        when = dt.datetime(value // 10_000, value // 100 % 100, value % 100, tzinfo=dt.timezone.utc)
    except ValueError:
        return float(value)  # a plain number that happens to have eight digits
    return when.timestamp()


def is_date(text: Any) -> bool:
    """Whether a value is a date or time rather than a plain number (which any reading is): what a
    column needs to hold to be taken for the time column without a time's name."""
    if parse_time(text) is None:
        return False
    try:
        value = float(text)
    except (TypeError, ValueError):
        return True  # ISO 8601
    return value.is_integer() and 1_000_01_01 <= value <= 9999_12_31


def parse_times(values: Sequence[Any]) -> np.ndarray:
    """Every value as seconds (NaN where one is not a time)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        t = parse_time(v)
        out[i] = np.nan if t is None else t
    return out


def season_of(step: float | None) -> int:
    """The season implied by the step between readings (1 where no season is known)."""
    if step is None or step <= 0:
        return 1
    for seconds, season in SEASONS:
        if abs(step - seconds) <= 0.1 * seconds:
            return season
    return 1


def describe_step(step: float | None) -> str:
    """A step in seconds for people: '7 days', '1 hour', '15 s'."""
    if step is None:
        return "one row"
    for seconds, name in ((DAY, "day"), (3_600.0, "hour"), (60.0, "minute")):
        if step >= seconds and abs(step / seconds - round(step / seconds)) < 0.05:
            n = round(step / seconds)
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{step:g} s"
