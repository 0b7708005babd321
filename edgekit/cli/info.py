from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import app, command


@app.command()
@command
def info(
    model: Annotated[Path, typer.Argument(help="A .tflite, .onnx or .keras model.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    """Show the model card inside a file, with its tensors and size."""
    from edgekit.errors import ModelFileError
    from edgekit.runtime.backends import read_card

    card = read_card(model)
    if card is None:
        raise ModelFileError(f"{model} has no edgekit model card")
    if json_out:
        typer.echo(card.to_json(indent=2))
        return
    typer.echo(f"{model}  ({model.stat().st_size / 1024:.1f} KB)")
    rows = [
        ("task", card.task),
        ("labels", ", ".join(card.labels[:20]) + (" ..." if len(card.labels) > 20 else "")),
        ("input", f"{card.input.name} {list(card.input.shape)} {card.input.dtype} {card.input.layout}"),
        ("output", f"{card.output.name} {list(card.output.shape)} {card.output.dtype}"),
        ("preprocess", ", ".join(f"{k}={v}" for k, v in card.preprocess.items())),
        ("format", f"{card.format} {card.quantization}"),
        ("io quantization", str(card.io_quantization or "float input and output")),
        ("recipe", f"{card.recipe} {card.hparams}"),
        ("dataset", f"{card.dataset.get('description', card.dataset.get('name', ''))}"),
        ("metrics", ", ".join(f"{k}={v}" for k, v in card.metrics.items())),
        (
            "parity",
            ", ".join(f"{k}={v}" for k, v in card.parity.items() if k not in ("bar", "failures")) or "-",
        ),
        ("weights sha256", card.weights_sha256),
        ("created", f"{card.created} by edgekit {card.edgekit_version}"),
    ]
    from edgekit.runtime.ops import op_report

    ops = op_report(model)
    if ops is not None:
        rows.append(("ops", ops.summary() or ops.note))
        rows.extend(("warning", w) for w in ops.warnings())
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"  {k.ljust(width)}  {v}")
