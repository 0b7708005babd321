from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command


@app.command()
@command
def compare(
    results: Annotated[list[Path], typer.Argument(help="Result files written by `edgekit bench`.")],
    plot: Annotated[Path | None, typer.Option(help="Draw the comparison as a PNG.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")] = False,
    baseline: Annotated[
        str | None, typer.Option(help="The row to normalise to (part of its name; default: the first).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the merged rows as JSON.")] = False,
) -> None:
    """Merge bench results from several machines into one table normalised to a baseline row; rows a
    host did not measure are shown as missing."""
    import json
    from dataclasses import asdict

    from edgekit.benchmark import compare as cmp

    c = cmp.compare_files(results, baseline)
    if json_out:
        doc = {
            "hosts": c.hosts,
            "baseline": c.baseline,
            "rows": {
                k: {h: asdict(r) if (r := c.cells.get((h, k))) else None for h in c.hosts} for k in c.keys
            },
        }
        typer.echo(json.dumps(doc, indent=1))
    else:
        typer.echo(cmp.markdown(c) if markdown else cmp.text_table(c))
    if plot:
        cmp.plot(c, plot)
        typer.echo(f"saved {plot}", err=True)
