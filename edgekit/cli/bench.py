from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command


@app.command()
@command
def bench(
    models: Annotated[list[Path], typer.Argument(help="Model files (.tflite, .onnx, .keras).")],
    backend: Annotated[
        list[str] | None, typer.Option(help="Backend(s) to compare (default: the best for each file).")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per model.")] = 200,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 20,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: the library's).")] = None,
    data: Annotated[
        str | None, typer.Option(help="Held-out data for accuracy (default: the card's).")
    ] = None,
    eval_samples: Annotated[int, typer.Option(help="Held-out samples for accuracy.")] = 1000,
    json_out: Annotated[Path | None, typer.Option("--json", help="Save the figures as JSON.")] = None,
) -> None:
    """Latency (p50/p90/p99), load and first-inference time, size and accuracy per model and backend."""
    from edgekit.bench_table import bench_models, save_json, table

    rows = bench_models(
        models,
        backend or [None],
        runs=runs,
        warmup=warmup,
        threads=threads,
        data=data,
        eval_samples=eval_samples,
    )
    typer.echo(table(rows))
    if json_out:
        save_json(rows, json_out)
        typer.echo(f"saved {json_out}", err=True)
