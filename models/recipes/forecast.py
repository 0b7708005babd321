"""Forecasting from a stream of readings (000 §edge computing: a smart home reading its sensors,
traffic-flow prediction): a window of past readings -> the next `horizon` readings.

`forecast` is an LSTM over the window (the course's RNN; `--set layer=conv` gives a Conv1D stack
instead), trained by default on the weekly Mauna Loa CO2 series, any CSV with `--data file.csv
--target COLUMN`. Its inputs are each window relative to its own last reading over one spread
fitted on the training part, its targets the next readings on the same scale
(`runtime/series.py`), so a drifting series is forecast from its changes, not its level. The
TFLite export unrolls the LSTM over a batch of 1 (`export/graph.py`), as for `kws-lstm`: plain
builtins, int8 included. The held-out skill is against the seasonal-naive forecast."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)
from edgekit.runtime.datasets.series import CO2, DEFAULT_HORIZON
from edgekit.runtime.series import SeriesSpec, season_of

WINDOW = 52  # the shipped series' window: a year of weeks
LAYERS = ("lstm", "conv")
# the shipped series as the card describes it before the data is read (the data's own replaces it)
DECLARED = SeriesSpec(
    column="co2",
    window=WINDOW,
    horizon=DEFAULT_HORIZON,
    season=52,
    unit="ppm",
    time="date",
    step=7 * 86_400.0,
).to_dict()
assert CO2.window == WINDOW and season_of(DECLARED["step"]) == CO2.season


def fit_spread(train_split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The declared series with its spread: the standard deviation of the training targets' change
    from each window's last reading (a window of changes that size is the model's unit)."""
    import numpy as np

    y = train_split.y
    change = np.asarray(y["future"], np.float64) - np.asarray(y["last"], np.float64)[:, None]
    spread = float(change.std()) if change.size else 1.0
    spec = dataclasses.replace(SeriesSpec.from_dict(preprocess), scale=spread or 1.0)
    return {**preprocess, **spec.to_dict()}


def series_targets(split: Any, card: Any) -> Any:
    """The next readings relative to each window's last one, over the fitted spread."""
    return SeriesSpec.from_dict(card.preprocess).targets(split.y)


def window_shape(preprocess: Any) -> dict[str, int]:
    """The build's `window` and `horizon`: the data's (a user's series has its own)."""
    return {"window": int(preprocess["window"]), "horizon": int(preprocess["horizon"])}


def build_forecast(
    num_classes: int = 1,
    window: int = WINDOW,
    horizon: int = DEFAULT_HORIZON,
    layer: str = "lstm",
    units: int = 32,
):
    """LSTM(units) over the window -> Dense(horizon); or, with `layer="conv"`, Conv1D(units, 5) ->
    Conv1D(units, 5, stride 2) -> global average pool -> Dense(horizon). One series in
    (`num_classes`, the number of series, is 1), `horizon` readings out."""
    import keras
    from keras import layers

    from edgekit.errors import ConfigError

    if layer not in LAYERS:
        raise ConfigError(f"forecast's layer is {' or '.join(LAYERS)}, not {layer!r}")
    if layer == "lstm":
        body = [layers.LSTM(units)]
    else:
        body = [
            layers.Conv1D(units, 5, padding="causal", activation="relu"),
            layers.Conv1D(units, 5, strides=2, activation="relu"),
            layers.GlobalAveragePooling1D(),
        ]
    return keras.Sequential(
        [keras.Input((window, 1), name="window"), *body, layers.Dense(horizon, name="next")],
        name=f"forecast_{layer}",
    )


RECIPES.add(
    Recipe(
        name="forecast",
        task="forecast",
        description=(
            "a sensor forecaster: LSTM 32 over a window of past readings -> the next 4 "
            "(weekly Mauna Loa CO2 by default; any CSV with --data FILE --target COLUMN)"
        ),
        build=build_forecast,
        input=InputSpec(
            "window",
            (WINDOW, 1),
            "NTC",  # batch, time (readings), one value each
            MappingProxyType(DECLARED),
            fit_preprocess=fit_spread,
            data_args=window_shape,
        ),
        data=DataSpec("co2", targets=series_targets),
        output=OutputSpec("forecast", "NC", "linear"),
        training=TrainingDefaults(
            epochs=60,
            batch_size=32,
            learning_rate=3e-3,
            loss="huber",
            keras_metrics=("mae",),
            early_stopping_patience=10,
        ),
        # 0.79 measured (MAE 0.34 ppm; seasonal-naive 1.67, last value 0.76, statsmodels ETS 0.50)
        evaluation=Evaluation(metric="skill", bar=0.5),
        hparams=MappingProxyType({"layer": "lstm", "units": 32}),
        architecture=(("LSTM", 32), ("Dense", DEFAULT_HORIZON)),
        tiny=MappingProxyType({"units": 4}),
        search=MappingProxyType({"units": (16, 32, 64), "layer": LAYERS}),
    )
)
