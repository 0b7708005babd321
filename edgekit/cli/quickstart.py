from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command


@app.command()
@command
def quickstart(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for everything it makes (a rerun replaces it).")
    ] = Path("edgekit-quickstart"),
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the recipe's).")] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per artifact.")] = 500,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also save the table as JSON.")] = None,
    force: Annotated[bool, typer.Option(help="Write into a folder that holds other files.")] = False,
) -> None:
    """The whole flow on the shipped MNIST digits: train the CNN, export four artifacts, validate, benchmark."""
    from edgekit.quickstart import run_quickstart

    result = run_quickstart(
        out, epochs=epochs, runs=runs, force=force, progress=lambda m: typer.echo(m, err=True)
    )
    typer.echo(result.table)
    if json_out:
        result.save(json_out)
