"""Series: windows of past readings (a forecaster's input), made into the model's input by the card's
`SeriesSpec` (`runtime/series.py`): each window relative to its last reading, over the fitted
spread. A raw item is one window, oldest reading first, in the series' units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.runtime.inputs import INPUT_KINDS, InputKind
from edgekit.runtime.series import SeriesSpec


class SeriesInput(InputKind):
    name = "series"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """Windows -> (N, window, 1) float32, exactly as on the device."""
        spec = SeriesSpec.from_dict(preprocess)
        if not len(raw):
            return np.zeros((0, spec.window, 1), np.float32)
        return spec.encode(np.stack([np.asarray(w, dtype=np.float64)[-spec.window :] for w in raw]))

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Windows that move as a series does: a season's swing and a random walk, each step about
        the fitted spread over the horizon, around an arbitrary level (only changes matter)."""
        spec = SeriesSpec.from_dict(preprocess)
        rng = np.random.default_rng(seed)
        t = np.arange(spec.window)
        per_step = spec.scale / np.sqrt(spec.horizon)
        walk = np.cumsum(rng.normal(0.0, per_step, (n, spec.window)), axis=1)
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        swing = 2 * spec.scale * np.sin(2 * np.pi * t / max(spec.season, 2) + phase)
        return (100.0 + walk + swing).astype(np.float32)

    def blank(self, preprocess: Mapping[str, Any]) -> np.ndarray:
        """A window of one steady reading."""
        return np.zeros(SeriesSpec.from_dict(preprocess).window, np.float32)

    def input_shape(self, preprocess: Mapping[str, Any], declared: tuple[int, ...]) -> tuple[int, ...]:
        """One step per reading of the window, one value each."""
        return (int(preprocess.get("window", declared[0])), 1)


INPUT_KINDS.add(SeriesInput())
