from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import app, command


@app.command()
@command
def train(
    recipe: Annotated[str, typer.Argument(help="A recipe name, e.g. mnist-cnn (see `edgekit list`).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for model.keras, card, history, curves.")
    ] = Path("runs/{recipe}"),
    data: Annotated[
        str | None, typer.Option(help="Dataset: 'shipped', 'keras' (download), or a file/folder of your own.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the recipe's).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the recipe's).")] = None,
    limit: Annotated[int | None, typer.Option(help="Train on the first N training samples only.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed, for reproducible runs.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite files from an earlier run.")] = False,
) -> None:
    """Train a documented model; writes model.keras, card.json, history.json and curves.png."""
    from edgekit.models.train import train as run_training

    out = Path(str(out).format(recipe=recipe))
    result = run_training(
        recipe, out, data=data, epochs=epochs, batch_size=batch_size, limit=limit, seed=seed, force=force
    )
    m = result.card.metrics
    typer.echo(
        f"{recipe}: held-out accuracy {m['heldout_accuracy']:.4f} on {len(result.dataset.heldout)} samples "
        f"after {m['epochs']} epochs ({result.seconds:.1f}s)"
    )
    typer.echo(
        f"wrote {result.model_path}, {out / 'card.json'}, {out / 'history.json'}, {out / 'curves.png'}"
    )
