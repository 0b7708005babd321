"""JSON lines on stdout (`--json`), for scripts: one object per input with its results, which source
it came from, capture and result timestamps (Unix seconds), end-to-end latency and per-stage
times. `--serve`'s `/results` sends the same objects."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

from edgekit.errors import DataError
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Sink, SinkContext, SinkKind
from edgekit.runtime.sources import Item

# time.perf_counter() -> seconds since the epoch, for timestamps a script can line up with others
_EPOCH_OFFSET = time.time() - time.perf_counter()


def wall_time(perf: float) -> float:
    """A `time.perf_counter()` reading as seconds since the Unix epoch."""
    return perf + _EPOCH_OFFSET


def record(item: Item, prediction: Prediction) -> dict:
    """The JSON object written for one input."""
    done = prediction.done or time.perf_counter()
    return {
        "source": item.name,
        "feed": item.feed,  # which of several --source it came from (0 for one)
        "index": item.index,
        "t_capture": round(wall_time(item.t_capture), 6),
        "t_result": round(wall_time(done), 6),
        "latency_ms": round((done - item.t_capture) * 1e3, 3),
        "results": [r.to_dict() for r in prediction.results],
        "times_ms": {k: round(v * 1e3, 4) for k, v in prediction.times.items()},
    }


class JsonLinesSink(Sink):
    """One JSON object per input, for scripts."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        try:  # NaN is not JSON: a result holding one is that input's error, never a line
            line = json.dumps(record(item, prediction), ensure_ascii=False, allow_nan=False)
        except ValueError:
            raise DataError(f"a result for {item.name} is not finite (NaN or inf)") from None
        print(line, file=self.stream, flush=True)


def _open(context: SinkContext, target: Path | None) -> Sink:
    return JsonLinesSink(context.stream)


SINKS.add(SinkKind("json", "JSON lines for scripts on stdout (--json)", _open))
