"""One line per input on stdout, for people: `name: label (score), ...` (what `edgekit run` prints)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Sink, SinkContext, SinkKind
from edgekit.runtime.sources import Item


def describe(result: Any) -> str:
    """One result for people: `label (score)`, with the box of a detection."""
    label, score = getattr(result, "label", None), getattr(result, "score", None)
    if label is None or score is None:
        return str(result)
    box = getattr(result, "box", None)
    where = f" at [{', '.join(f'{v:.0f}' for v in box)}]" if box is not None else ""
    return f"{label} ({score:.3f}){where}"


class TextSink(Sink):
    """One line per input, for people: `name: label (score), ...`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        shown = ", ".join(describe(r) for r in prediction.results) or "nothing"
        print(f"{item.name}: {shown}", file=self.stream)


def _open(context: SinkContext, target: Path | None) -> Sink:
    return TextSink(context.stream)


SINKS.add(SinkKind("text", "lines for people on stdout", _open))
