"""`edgekit import`: bring a model from another framework in as a Keras model with its card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command

import_app = typer.Typer(
    help="Bring a model from another framework in as model.keras + card.json, ready for `edgekit export`.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")


@import_app.command("darknet")
@command
def darknet(
    cfg: Annotated[Path, typer.Argument(help="The Darknet .cfg (YOLOv3, YOLOv3-tiny, YOLOv4-tiny...).")],
    weights: Annotated[
        Path | None, typer.Argument(help="Its .weights (default: the same name beside the cfg).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: a folder named after the cfg)."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="Class names, one a line (default: COCO's for 80 classes, else <cfg>.names)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing model.keras / card.json.")] = False,
) -> None:
    """Rebuild a Darknet YOLO as the same Keras network with its weights, raw heads as outputs."""
    from edgekit.models.darknet import import_darknet

    result = import_darknet(cfg, weights, out, labels_path=labels, force=force)
    typer.echo(
        f"{result.model}  {result.parameters:,} parameters, {result.heads} YOLO heads; card: {result.card}"
    )
