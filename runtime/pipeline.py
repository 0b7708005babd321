"""The run loop as a library object: a source's items through a model to sinks, with the run's
statistics. `edgekit run` is this plus option parsing; a Python program runs a camera, a stream,
a video or a folder the same way, in the style of MediaPipe Tasks' running modes.

Iterate it for each result (the item, its typed results, per-stage times and latency)::

    from edgekit.runtime.pipeline import Pipeline

    with Pipeline.open("detector.tflite", "0") as run:  # camera 0; any --source text, or a Source
        for result in run:
            print(result.item.index, result.results, f"{result.latency * 1e3:.0f} ms")
    print(run.summary().describe())  # frames in, processed, dropped, fps, latency p50/p99

An input the model gives no result for (its outputs are NaN or inf) is not yielded: it is counted
in the summary's `failed`, and the run goes on.

or hand it a callback and let it run to the end (of the source, `max_frames`, `q` in the window,
or Ctrl-C), which closes it and returns the summary::

    options = RunOptions(save=Path("out.mp4"), max_frames=300, source=SourceOptions(fps=10))
    summary = Pipeline.open("detector.tflite", "rtsp://cam/stream", options).run(callback=print)

The pipeline owns what it is given (the predictor, the source, extra sinks) and releases all of it
when it closes, also when it fails to open.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.predictor import Prediction, Predictor
from edgekit.runtime.run_stats import RunStats, RunSummary
from edgekit.runtime.sinks import Sink, Tee, check_sinks, open_sinks
from edgekit.runtime.sources import Item, Source, SourceOptions, open_source, source_kind

LINES = ("text", "json")  # what RunOptions.lines may name: the sinks that print a line per input


@dataclass(frozen=True)
class RunOptions:
    """Where results go and when the run stops (what `edgekit run` takes besides the model and the
    source). `lines`: one line per input on stdout, "text" for people or "json" for scripts, None
    for none (a Python program reads the results itself)."""

    lines: str | None = None
    save: Path | None = None  # out.jpg, a folder, out.mp4 / out.avi: the sink it names (SINKS)
    show: bool = False  # a window with the frames and results drawn (q quits)
    force: bool = False  # overwrite what `save` would replace
    max_frames: int | None = None  # stop after this many results (None or 0: at the source's end)
    source: SourceOptions = field(default_factory=SourceOptions)

    def __post_init__(self) -> None:
        if self.lines is not None and self.lines not in LINES:
            raise ConfigError(f"lines takes {' or '.join(LINES)} (or None), not {self.lines!r}")

    def check(self) -> None:
        """Fail now if a sink asked for cannot work here (no display for a window): call it before
        a model loads or a camera opens."""
        check_sinks(save=self.save, show=self.show)


@dataclass(frozen=True)
class RunResult:
    """One processed item: what came in, what the model said, and how long each stage took."""

    item: Item
    prediction: Prediction

    @property
    def results(self) -> list[Any]:
        """The task's typed results (Classification, Detection, ...)."""
        return self.prediction.results

    @property
    def times(self) -> dict[str, float]:
        """Seconds per stage: preprocess, inference, postprocess."""
        return self.prediction.times

    @property
    def latency(self) -> float:
        """Seconds from capture to result."""
        return self.prediction.done - self.item.t_capture


class Pipeline:
    """Items from `source` through `predictor` to the sinks `options` ask for (plus `sinks`), with
    the run's statistics in `stats`. Iterate it, or `run(callback)`; it runs once."""

    def __init__(
        self,
        predictor: Predictor,
        source: str | Source,
        options: RunOptions | None = None,
        *,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.predictor = predictor
        self.options = options or RunOptions()
        self.spec = source if isinstance(source, str) else getattr(source, "name", source.kind)
        self.source: Source | None = source if isinstance(source, Source) else None
        self.sink: Sink = Tee(list(sinks))
        self.stats = RunStats()
        self.interrupted = False  # ended by Ctrl-C (run() only)
        self._results: Iterator[RunResult] | None = None
        self._closed = False
        try:
            self.options.check()
            if self.source is None:
                self.source = self._open_source(str(source))
            opened = open_sinks(
                json_out=self.options.lines == "json",
                lines=self.options.lines is not None,
                save=self.options.save,
                show=self.options.show,
                source=self.source,
                draw=predictor.task.draw,
                force=self.options.force,
            )
            self.sink = Tee([opened, *sinks])
        except BaseException as e:
            self._close(failed=e)
            raise

    @classmethod
    def open(
        cls,
        model: str | Path | Predictor,
        source: str | Source,
        options: RunOptions | None = None,
        *,
        sinks: Sequence[Sink] = (),
    ) -> Pipeline:
        """A pipeline over a model file (opened with its best backend) or an opened Predictor. The
        sinks are checked first: no window here, no model loaded and no camera opened."""
        options = options or RunOptions()
        if not isinstance(model, Predictor):
            try:
                options.check()
                model = Predictor(model)
            except BaseException:
                if isinstance(source, Source):
                    source.close()
                raise
        return cls(model, source, options, sinks=sinks)

    def _open_source(self, spec: str) -> Source:
        kind, accepts = source_kind(spec), self.predictor.task.accepts
        if kind.produces != accepts:
            hint = self.predictor.task.wrong_source_hint(kind.produces)
            raise ConfigError(
                f"{Path(self.predictor.session.path).name} is a {self.predictor.card.task} model and "
                f"takes {accepts}, but {spec!r} is {'an' if kind.name[0] in 'aeiou' else 'a'} {kind.name} "
                f"source that gives {kind.produces}" + (f": {hint}" if hint else "")
            )
        return open_source(spec, self.options.source)

    # -- running -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[RunResult]:
        if self._results is not None or self._closed:
            raise ConfigError("a pipeline runs once: open another one to run again")
        self._results = self._run()
        return self._results

    def _run(self) -> Iterator[RunResult]:
        assert self.source is not None
        limit = self.options.max_frames
        for item in self.source:
            try:
                prediction = self.predictor(item.data)
                self.sink.write(item, prediction)
            except DataError as e:  # this input gave no usable result (NaN outputs): the next may
                self.stats.fail(item, str(e))
            else:
                self.stats.add(item, prediction)
                yield RunResult(item, prediction)
            if self.sink.stopped or (limit and self.stats.processed + self.stats.failed >= limit):
                return

    def run(self, callback: Callable[[RunResult], Any] | None = None) -> RunSummary:
        """Process every item, handing each result to `callback`, until the source ends,
        `max_frames`, `q` in the window or Ctrl-C (which ends a live run: `interrupted`); then
        close and return the summary."""
        with self:
            try:
                for result in self:
                    if callback is not None:
                        callback(result)
            except KeyboardInterrupt:
                self.interrupted = True
        return self.summary()

    def summary(self) -> RunSummary:
        """The run in numbers. A live source's counts are final once the pipeline is closed (a
        frame still waiting then is counted as dropped)."""
        if self.source is None:
            raise ConfigError("the pipeline has no source: it failed to open")
        return self.stats.summary(self.source)

    # -- releasing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sinks (finishing their files), the source and the model."""
        self._close(failed=None)

    def _close(self, failed: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.ExitStack() as stack:  # each is released even when one before it fails
            stack.callback(self.predictor.close)
            if self.source is not None:
                stack.callback(self.source.close)
            if self._results is not None:
                stack.callback(self._results.close)  # type: ignore[attr-defined]
            stack.callback(self.sink.abort if failed is not None else self.sink.close)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # Ctrl-C is how a live run is ended: what was written so far is kept
        ended = exc_type is None or issubclass(exc_type, KeyboardInterrupt)
        self._close(failed=None if ended else exc)
