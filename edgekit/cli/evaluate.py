from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command


@app.command()
@command
def evaluate(
    model: Annotated[
        Path, typer.Argument(help="A model file: .keras/.h5 (with its card), .tflite or .onnx.")
    ],
    data: Annotated[
        str | None,
        typer.Option(help="The data to evaluate on (default: the card's dataset, held-out split)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate on the first N held-out samples only.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="Runtime backend (default: the best for the file).")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads.")] = None,
    confusion: Annotated[
        Path | None, typer.Option(help="Write the confusion matrix of a classifier to this PNG.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """The recipe's metric on held-out data (accuracy; IoU/Dice for U-Net; mAP@0.5 for the detector);
    for a classifier also precision, recall and F1 per class, macro and weighted."""
    from edgekit.evaluate_file import evaluate_model, per_class_table

    result = evaluate_model(
        model, data=data, limit=limit, backend=backend, threads=threads, confusion=confusion
    )
    if json_out:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    shown = "  ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in result["metrics"].items()
        if not isinstance(v, dict)
    )
    typer.echo(
        f"{model.name}: {shown}  ({result['samples']} samples of {result['data']}, {result['backend']})"
    )
    for line in per_class_table(result["metrics"]):
        typer.echo(line)
    if confusion:
        typer.echo(f"wrote {confusion}", err=True)
