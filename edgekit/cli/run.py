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
) -> None:
    """Run a model on images, a folder, a video or a camera, printing top-k labels."""
    from edgekit.card import ModelCard
    from edgekit.errors import SourceError
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.sinks import JsonLinesSink, TextSink
    from edgekit.runtime.sources import open_source
    from edgekit.runtime.tasks import TaskOptions

    if top_k < 1:
        raise typer.BadParameter("--top-k must be at least 1")
    given = ModelCard.load(card) if card else None
    sink = JsonLinesSink() if json_out else TextSink()
    done, t0 = 0, time.perf_counter()
    with (
        Predictor(
            model,
            backend=backend,
            threads=threads,
            device=device,
            card=given,
            options=TaskOptions(top_k=top_k),
        ) as predictor,
        open_source(source) as src,
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
