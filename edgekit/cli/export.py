from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import app, command


def report_line(path: Path, size: int, report: dict) -> str:
    return (
        f"{path}  {size / 1024:.1f} KB  top-1 agreement {report['top1_agreement']:.4f}  "
        f"max abs diff {report['max_abs_diff']:.2e}  accuracy {report['accuracy']:.4f} "
        f"(Keras {report['accuracy_keras']:.4f}, {report['accuracy_delta_points']:+.2f} points) "
        f"on {report['samples']} held-out samples"
    )


@app.command()
@command
def export(
    model: Annotated[Path, typer.Argument(help="A .keras model written by `edgekit train`.")],
    to: Annotated[str, typer.Option("--to", help="Format: tflite or onnx.")] = "tflite",
    quantize: Annotated[str, typer.Option(help="fp32, fp16, dynamic or int8.")] = "fp32",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default: beside the model).")
    ] = None,
    data: Annotated[str | None, typer.Option(help="Held-out/calibration data (default: the card's).")] = None,
    calib_samples: Annotated[int, typer.Option(help="Representative samples for int8 calibration.")] = 200,
    max_drop: Annotated[float | None, typer.Option(help="Accuracy drop allowed, in points.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    unsafe: Annotated[bool, typer.Option(help="Load models with Lambda layers (runs their code).")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Convert a Keras model, embed its card, and validate the file against Keras."""
    from edgekit.export.api import export_model, plan_export

    options = plan_export(
        model, to, quantize, out, force=force, calib_samples=calib_samples, max_drop=max_drop, opset=opset
    )
    result = export_model(model, options, data=data, unsafe=unsafe)
    typer.echo(report_line(result.path, result.size, result.report))
