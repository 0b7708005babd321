"""Sinks: where results go. Every sink takes the same typed results."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sources import Item


class Sink:
    def write(self, item: Item, prediction: Prediction) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release."""


def _describe(result: Any) -> str:
    label, score = getattr(result, "label", None), getattr(result, "score", None)
    return f"{label} ({score:.3f})" if label is not None and score is not None else str(result)


class TextSink(Sink):
    """One line per input, for people: `name: label (score), ...`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        shown = ", ".join(_describe(r) for r in prediction.results) or "nothing"
        print(f"{item.name}: {shown}", file=self.stream)


class JsonLinesSink(Sink):
    """One JSON object per input, for scripts."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        record = {
            "source": item.name,
            "index": item.index,
            "results": [r.to_dict() for r in prediction.results],
            "times_ms": {k: round(v * 1e3, 4) for k, v in prediction.times.items()},
        }
        print(json.dumps(record, ensure_ascii=False), file=self.stream, flush=True)
