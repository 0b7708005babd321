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

Several sources go through the one model in turn (a list of sources: `["0", "rtsp://cam/2"]`): each
result's `item.feed` says which, a slow or dead one never holds up the others, and the summary has
one per source in `feeds`. With `RunOptions(serve=ServeOptions.parse("0.0.0.0:8080"))` the run is
also served to browsers (`edgekit.runtime.serve`): `run.url` is the address to open::

    options = RunOptions(serve=ServeOptions.parse("8080"))
    with Pipeline.open("detector.tflite", ["0", "rtsp://cam/stream"], options) as run:
        print("open", run.url)
        for result in run:
            ...

The pipeline owns what it is given (the predictor, the sources, extra sinks) and releases all of it
when it closes, also when it fails to open.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import ConfigError, DataError, first_line
from edgekit.runtime.predictor import Prediction, Predictor
from edgekit.runtime.run_stats import RunStats, RunSummary
from edgekit.runtime.sinks import Sink, Tee, check_sinks, open_sinks, save_kind
from edgekit.runtime.sources import Item, Source, SourceOptions, open_source, source_kind
from edgekit.runtime.sources.many import Interleaved, feeds_of

if TYPE_CHECKING:  # the server's modules (and Tornado) load only when a run is served
    from edgekit.runtime.serve import ServeOptions
    from edgekit.runtime.serve.hub import Hub
    from edgekit.runtime.serve.server import Server

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
    serve: ServeOptions | None = None  # watch the run from a browser: edgekit.runtime.serve

    def __post_init__(self) -> None:
        if self.lines is not None and self.lines not in LINES:
            raise ConfigError(f"lines takes {' or '.join(LINES)} (or None), not {self.lines!r}")

    def check(self) -> None:
        """Fail now if a sink asked for cannot work here (no display for a window): call it before
        a model loads or a camera opens; a port that cannot be served on fails here too."""
        check_sinks(save=self.save, show=self.show)
        if self.serve is not None:
            from edgekit.runtime.serve import check_bind

            check_bind(self.serve)

    def check_several(self) -> None:
        """Fail now if what is asked for cannot take several sources at once."""
        if self.show:
            raise ConfigError("--show shows one source; watch several with --serve (a tile each)")
        if self.save is not None and save_kind(self.save).name != "folder":
            raise ConfigError(
                f"--save {self.save} makes {save_kind(self.save).description}; with several sources "
                "give a folder (one annotated image per frame, named by its source)"
            )


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


Sources = str | Source | Sequence[str | Source]  # one source, or several through one model


def _given(source: Sources) -> list[str | Source]:
    return [source] if isinstance(source, (str, Source)) else list(source)


class Pipeline:
    """Items from `source` (or several, in turn) through `predictor` to the sinks `options` ask for
    (plus `sinks`), with the run's statistics in `stats` (and per source in `feed_stats`). Iterate
    it, or `run(callback)`; it runs once."""

    def __init__(
        self,
        predictor: Predictor,
        source: Sources,
        options: RunOptions | None = None,
        *,
        sinks: Sequence[Sink] = (),
    ) -> None:
        self.predictor = predictor
        self.options = options or RunOptions()
        given = _given(source)
        self.spec = " + ".join(s if isinstance(s, str) else getattr(s, "name", s.kind) for s in given)
        self.source: Source | None = None
        self.sink: Sink = Tee(list(sinks))
        self.stats = RunStats()
        self.feed_stats: list[RunStats] = []  # one per source, when there are several
        self.server: Server | None = None
        self.interrupted = False  # ended by Ctrl-C (run() only)
        self._hub: Hub | None = None
        self._given = [s for s in given if isinstance(s, Source)]  # owned: closed on a failed open
        self._results: Iterator[RunResult] | None = None
        self._closed = False
        try:
            if not given:
                raise ConfigError("a pipeline needs a source")
            self.options.check()
            if len(given) > 1:
                self.options.check_several()
            self.source = self._open_sources(given)
            if isinstance(self.source, Interleaved):
                self.feed_stats = [RunStats() for _ in self.source.feeds]
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
            if self.options.serve is not None:
                self._serve(self.options.serve)
        except BaseException as e:
            self._close(failed=e)
            raise

    @classmethod
    def open(
        cls,
        model: str | Path | Predictor,
        source: Sources,
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
                for given in _given(source):
                    if isinstance(given, Source):
                        given.close()
                raise
        return cls(model, source, options, sinks=sinks)

    def _open_sources(self, given: list[str | Source]) -> Source:
        """One source as it is, several as one that takes them in turn; those opened before one
        that fails are closed."""
        opened: list[Source] = []
        try:
            for spec in given:
                opened.append(spec if isinstance(spec, Source) else self._open_source(spec))
        except BaseException:
            for src in opened + [s for s in self._given if s not in opened]:
                with contextlib.suppress(Exception):
                    src.close()
            self._given = []
            raise
        self._given = []
        return opened[0] if len(opened) == 1 else Interleaved(opened)

    def _serve(self, serve: ServeOptions) -> None:
        from edgekit.runtime.serve import bind
        from edgekit.runtime.serve.hub import Hub
        from edgekit.runtime.serve.server import Server

        task, session, card = self.predictor.task, self.predictor.session, self.predictor.card
        info = {
            "model": Path(session.path).name,
            "task": card.task,
            "labels": list(card.labels[:1000]),
            "backend": session.backend,
            "device": session.device,
            "threads": getattr(self.predictor, "threads", None) or "default",
        }
        assert self.source is not None
        hub = Hub(
            feeds_of(self.source),
            task.draw,
            info,
            picture=task.accepts == "image",
            max_fps=serve.max_fps,
            quality=serve.quality,
        )
        self._hub = hub
        self.server = Server(hub, serve, bind(serve))
        self.server.start()

    @property
    def url(self) -> str | None:
        """The address to open in a browser when the run is served (with its token), else None."""
        return self.server.url() if self.server is not None else None

    def _open_source(self, spec: str) -> Source:
        kind, accepts = source_kind(spec), self.predictor.task.accepts
        if kind.produces != accepts:
            hint = self.predictor.task.wrong_source_hint(kind.produces)
            raise ConfigError(
                f"{Path(self.predictor.session.path).name} is a {self.predictor.card.task} model and "
                f"takes {accepts}, but {spec!r} is {'an' if kind.name[0] in 'aeiou' else 'a'} {kind.name} "
                f"source that gives {kind.produces}" + (f": {hint}" if hint else "")
            )
        return open_source(spec, self.options.source, kind)

    # -- running -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[RunResult]:
        if self._results is not None or self._closed:
            raise ConfigError("a pipeline runs once: open another one to run again")
        self._results = self._run()
        return self._results

    def _run(self) -> Iterator[RunResult]:
        assert self.source is not None
        limit = self.options.max_frames
        hub, per_feed = self._hub, self.feed_stats
        if hub is not None:
            hub.running = True
        for item in self.source:
            try:
                prediction = self.predictor(item.data)
                self.sink.write(item, prediction)
            except DataError as e:  # this input gave no usable result (NaN outputs): the next may
                self.stats.fail(item, str(e))
                if per_feed:
                    per_feed[item.feed].fail(item, str(e))
                if hub is not None:
                    hub.fail(item)
            else:
                self.stats.add(item, prediction)
                if per_feed:
                    per_feed[item.feed].add(item, prediction)
                if hub is not None:
                    hub.publish(item, prediction)
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
        summary = self.stats.summary(self.source)
        if isinstance(self.source, Interleaved):
            feeds = tuple(
                dataclasses.replace(stats.summary(feed), source=feed.name)  # type: ignore[arg-type]
                for stats, feed in zip(self.feed_stats, self.source.feeds)
            )
            summary = dataclasses.replace(summary, feeds=feeds)
        return summary

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
            for given in self._given:  # sources handed in that never became the pipeline's
                stack.callback(given.close)
            if self.source is not None:
                stack.callback(self.source.close)
            if self.server is not None:  # before the sources (the callbacks run last to first)
                stack.callback(self._stop_serving, failed)
            if self._results is not None:
                stack.callback(self._results.close)  # type: ignore[attr-defined]
            stack.callback(self.sink.abort if failed is not None else self.sink.close)

    def _stop_serving(self, failed: BaseException | None) -> None:
        hub, server = self._hub, self.server
        assert hub is not None and server is not None
        if self.interrupted:
            hub.ended = "the run was stopped (Ctrl-C)"
        elif failed is not None and not isinstance(failed, KeyboardInterrupt):
            hub.ended = f"the run failed: {first_line(failed)}"
        else:
            hub.ended = "the run is over"
        server.stop()
        hub.stop()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # Ctrl-C is how a live run is ended: what was written so far is kept
        ended = exc_type is None or issubclass(exc_type, KeyboardInterrupt)
        self._close(failed=None if ended else exc)
