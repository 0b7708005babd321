from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import app, command


@app.command()
@command
def run(
    model: Annotated[Path, typer.Argument(help="A .tflite, .onnx or .keras model.")],
    source: Annotated[
        str, typer.Option("--source", "-s", help="Image, folder or glob, video file, camera index.")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per input.")] = False,
    top_k: Annotated[int, typer.Option(help="Labels to show per input.")] = 3,
    backend: Annotated[
        str | None, typer.Option(help="Backend (default: the best installed for the file).")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: the library's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or tensorrt (ONNX).")] = "auto",
    card: Annotated[Path | None, typer.Option(help="A card.json for a file that has none inside.")] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after N inputs.")] = None,
    save: Annotated[
        Path | None,
        typer.Option(help="Save annotated output: out.jpg (one image), a folder, or out.mp4/out.avi."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite what --save would replace.")] = False,
    conf: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Detection score threshold (default: the card's).")
    ] = None,
    iou: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Detection NMS IoU threshold (default: the card's)."),
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Keep only these class ids, comma-separated (detection).")
    ] = None,
) -> None:
    """Run a model on images, a folder, a video or a camera, printing labels or detections."""
    from edgekit.card import ModelCard
    from edgekit.errors import SourceError
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.sinks import open_sinks
    from edgekit.runtime.sources import open_source
    from edgekit.runtime.tasks import TaskOptions

    if top_k < 1:
        raise typer.BadParameter("--top-k must be at least 1")
    try:
        keep = tuple(int(c) for c in classes.split(",")) if classes else None
    except ValueError:
        raise typer.BadParameter(f"--classes takes class ids such as 0,2, not {classes!r}") from None
    given = ModelCard.load(card) if card else None
    options = TaskOptions(top_k=top_k, conf=conf, iou=iou, classes=keep)
    done, t0 = 0, time.perf_counter()
    with (
        Predictor(
            model,
            backend=backend,
            threads=threads,
            device=device,
            card=given,
            options=options,
        ) as predictor,
        open_source(source) as src,
        open_sinks(json_out=json_out, save=save, source=src, draw=predictor.task.draw, force=force) as sink,
    ):
        for item in src:
            sink.write(item, predictor(item.data))
            done += 1
            if max_frames and done >= max_frames:
                break
        skipped, reasons = src.skipped, src.skip_reasons
    elapsed = time.perf_counter() - t0
    for reason in reasons[:10]:
        typer.secho(f"skipped {reason}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"{done} processed, {skipped} skipped in {elapsed:.2f}s", err=True)
    if done == 0:
        raise SourceError(f"nothing in {source} could be processed")
