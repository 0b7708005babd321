from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command

data_app = typer.Typer(help="Make the datasets the recipes train on with no network.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("make")
@command
def make(
    name: Annotated[str, typer.Argument(help="What to make (see `edgekit data list`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder to write (must be empty).")],
    count: Annotated[
        int | None, typer.Option(min=1, help="How many samples (default: the generator's).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed: the same seed makes the same data.")] = 0,
    force: Annotated[bool, typer.Option(help="Replace a folder that is not empty.")] = False,
) -> None:
    """Generate a dataset into a folder, in the layout its recipes' --data takes."""
    from edgekit.runtime.datasets.synth import make as run

    summary = run(name, out, count=count, seed=seed, force=force)
    typer.echo(summary)


@data_app.command("list")
@command
def list_generators() -> None:
    """The data generators, what they make and which recipes train on it."""
    from edgekit.runtime.datasets.synth import GENERATORS, generator_names

    for name in generator_names():
        gen = GENERATORS.get(name)
        extra = f" (recipes: {', '.join(gen.recipes)})" if gen.recipes else ""
        typer.echo(f"{name:10s} {gen.description}{extra}")
