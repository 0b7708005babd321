# No `from __future__ import annotations` here: typer reads the annotations of `run`'s 30 options
# at every start, and as strings it compiles and evaluates each one (5 ms of every `edgekit run`).
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgekit.cli.core import UsageError, app, command, work_begins

if TYPE_CHECKING:
    from edgekit.runtime.run_stats import RunSummary


@app.command()
@command(collect_from_start=False)
def run(
    model: Annotated[Path, typer.Argument(help="A .tflite, .onnx or .keras model.")],
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Image, folder or glob, video file, camera index, rtsp:// / http(s):// stream URL, "
            "for audio models a .wav file or folder of them, or mic (mic:N), "
            "or for text models a .txt file (one text a line) or - (stdin lines). "
            "Give it again for several sources through the one model, in turn.",
        ),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="A text to classify (text models).")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON line per input, then one with the summary.")
    ] = False,
    top_k: Annotated[int, typer.Option(help="Labels to show per input.")] = 3,
    backend: Annotated[
        str | None, typer.Option(help="Backend (default: the best installed for the file).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: the library's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or tensorrt (ONNX).")] = "auto",
    trt_cache: Annotated[
        Path | None,
        typer.Option(
            help="Where TensorRT engines are kept between runs (default: ~/.cache/edgekit/tensorrt)."
        ),
    ] = None,
    card: Annotated[Path | None, typer.Option(help="A card.json for a file that has none inside.")] = None,
    anchors: Annotated[
        Path | None,
        typer.Option(help="MediaPipe SsdAnchorsCalculator options (JSON) for an SSD file edgekit lacks."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="Class names, one a line (a Darknet .names file), replacing the card's."),
    ] = None,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after N inputs.")] = None,
    save: Annotated[
        Path | None,
        typer.Option(help="Save annotated output: out.jpg (one image), a folder, or out.mp4/out.avi."),
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Show annotated frames in a window (q quits).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite what --save would replace.")] = False,
    fps: Annotated[
        float | None,
        typer.Option(min=0.01, help="Process at most this many frames a second (live sources)."),
    ] = None,
    size: Annotated[
        str | None, typer.Option(help="Capture size WIDTHxHEIGHT, such as 640x480 (camera, stream).")
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime",
            help="Play a video file by its own clock, dropping frames the model is too slow for.",
        ),
    ] = False,
    reconnect: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds to keep reopening a camera or stream that drops out (0: stop)."),
    ] = 30.0,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for a stream to open or send a frame.")
    ] = 5.0,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            min=1, help="Skip images with more pixels than this, read from the header (default 100 million)."
        ),
    ] = None,
    conf: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Detection score threshold, or keyword threshold (default: the card's)."
        ),
    ] = None,
    iou: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Detection NMS IoU threshold (default: the card's)."),
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Keep only these class ids, comma-separated (detection).")
    ] = None,
    serve: Annotated[
        str | None,
        typer.Option(
            help="Serve a live page, /stream.mjpg, /results, /metrics and /healthz on [HOST:]PORT "
            "(8080: this machine only; 0.0.0.0:8080: every network, with a token).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="The token --serve asks for (default: a new one where one is needed)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve an address other than this machine's own with no token."),
    ] = False,
    max_viewers: Annotated[
        int, typer.Option(min=1, help="Viewers of each source's stream at once (more get 503).")
    ] = 4,
    serve_fps: Annotated[
        float, typer.Option(min=0.1, help="Frames a second sent to viewers of each source, at most.")
    ] = 15.0,
    seed: Annotated[
        int | None, typer.Option(min=0, help="A generator's noise seed: the same seed, the same images.")
    ] = None,
) -> None:
    """Run a model on images, a folder, a video, a camera or a stream, printing labels or detections
    and, at the end, a summary (frames in, processed, dropped, throughput, latency)."""
    from edgekit.card import ModelCard
    from edgekit.errors import SourceError
    from edgekit.runtime.pipeline import Pipeline, RunOptions
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.sources import SourceOptions
    from edgekit.runtime.tasks import TaskOptions

    if top_k < 1:
        raise typer.BadParameter("--top-k must be at least 1")
    if (not source) == (text is None):
        raise UsageError("give --source or --text (one of them)")
    if text is not None:  # a literal text, as a spec that no file, camera or stream source matches
        from edgekit.runtime.sources.text import text_spec

        source = [text_spec(text)]
    assert source
    if serve is None and (token is not None or no_auth or max_viewers != 4 or serve_fps != 15.0):
        raise typer.BadParameter("--token, --no-auth, --max-viewers and --serve-fps go with --serve")
    served = None
    if serve is not None:
        from edgekit.runtime.serve import ServeOptions

        served = ServeOptions.parse(
            serve, token=token, no_auth=no_auth, max_viewers=max_viewers, max_fps=serve_fps
        )
    try:
        keep = tuple(int(c) for c in classes.split(",")) if classes else None
    except ValueError:
        raise typer.BadParameter(f"--classes takes class ids such as 0,2, not {classes!r}") from None
    if size:
        from edgekit.runtime.sources.live import parse_size  # the live sources only when asked
    options = RunOptions(
        lines="json" if json_out else "text",
        save=save,
        show=show,
        force=force,
        max_frames=max_frames,
        serve=served,
        source=SourceOptions(
            fps=fps,
            size=parse_size(size) if size else None,
            realtime=realtime,
            reconnect=reconnect,
            timeout=timeout,
            max_pixels=max_pixels,
        ),
    )
    options.check()  # before the model loads and the camera opens: no window or no port, no run
    if len(source) > 1:
        options.check_several()
    if trt_cache is not None:
        from edgekit.runtime.nvidia import use_trt_cache

        use_trt_cache(trt_cache)
    given = ModelCard.load(card) if card else None
    if anchors is not None:  # the card of an SSD detector from its anchor options
        from edgekit.runtime.inferred_cards import anchors_card

        given = anchors_card(model, anchors)
    names = None
    if labels:
        from edgekit.runtime.darknet import read_labels

        names = read_labels(labels)
    predictor = Predictor(
        model,
        backend=backend,
        threads=threads,
        device=device,
        card=given,
        options=TaskOptions(top_k=top_k, conf=conf, iou=iou, classes=keep, seed=seed),
        labels=names,
    )
    pipeline = Pipeline(predictor, source[0] if len(source) == 1 else source, options)
    work_begins()  # start-up is over: the model is open and so is the source
    if served is not None:
        _say_where(pipeline, served)
    summary = pipeline.run()
    if pipeline.interrupted:
        typer.echo("", err=True)
    _report(summary, pipeline.source, json_out)
    for line in pipeline.sink.saved():  # every file --save wrote, named
        typer.echo(f"saved {line}", err=True)
    if summary.processed == 0:
        raise SourceError(f"nothing in {' + '.join(source)} could be processed")


def _say_where(pipeline: Any, served: Any) -> None:
    """The URL to open, on stderr (stdout is for results)."""
    url = pipeline.url
    if served.loopback:
        typer.secho(f"watch it at {url} (this machine only; Ctrl-C stops)", fg=typer.colors.GREEN, err=True)
    elif pipeline.server.token is not None:
        how = "" if served.token else " (a new token each start; --token sets your own)"
        typer.secho(
            f"watch it at {url} from any machine that reaches this one{how}", fg=typer.colors.GREEN, err=True
        )
    else:
        typer.secho(f"watch it at {url}", fg=typer.colors.GREEN, err=True)
        typer.secho(
            f"warning: --no-auth: anyone who reaches {served.host}:{pipeline.server.port} can watch this run "
            "(its frames, results and figures)",
            fg=typer.colors.YELLOW,
            err=True,
        )


def _report(summary: "RunSummary", src: Any, json_out: bool) -> None:
    """Skips and failures as warnings, then the summary on stderr (and as a JSON line with --json);
    with several sources, a line for each before the total."""
    from edgekit.runtime.sources.many import feeds_of

    feeds = feeds_of(src)
    for reason in src.skip_reasons:
        typer.secho(f"skipped {reason}", fg=typer.colors.YELLOW, err=True)
    if src.skipped > len(src.skip_reasons):
        more = src.skipped - len(src.skip_reasons)
        typer.secho(f"... and {more} more skipped", fg=typer.colors.YELLOW, err=True)
    for feed in feeds:
        for why in feed.failures:
            typer.secho(f"{feed.name} failed ({why}); reopening it", fg=typer.colors.YELLOW, err=True)
    if summary.error:
        typer.secho(summary.error, fg=typer.colors.YELLOW, err=True)
    for i, feed in enumerate(summary.feeds):
        typer.echo(f"source {i} ({feed.source}): {feed.describe()}", err=True)
    typer.echo(("all sources: " if summary.feeds else "") + summary.describe(), err=True)
    if json_out:
        typer.echo(json.dumps({"summary": summary.to_dict()}))
