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
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Training epochs (default: the recipe's).")
    ] = None,
    runs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Exactly this many timed runs per file (default: until the median is known to ±2.5%)."
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also save the benchmark's result file (JSON) here.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Write into a folder that holds other files.")] = False,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Every figure in the table (load, first, p90, p99, CV, memory...)."),
    ] = False,
) -> None:
    """The whole flow on the shipped MNIST digits: train the CNN, export four artifacts, validate, benchmark."""
    from edgekit.benchmark.runner import progress_printer
    from edgekit.fileio import check_writable
    from edgekit.quickstart import run_quickstart

    if json_out is not None:
        check_writable(json_out, force=True)
    result = run_quickstart(
        out,
        epochs=epochs,
        runs=runs,
        force=force,
        progress=lambda m: typer.echo(m, err=True),
        rows=progress_printer(),
    )
    typer.echo(result.report.table(wide=wide))
    written = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    typer.echo(f"wrote {out}/: {', '.join(written)}", err=True)
    if json_out:
        result.save(json_out)
        typer.echo(f"saved {json_out}", err=True)
