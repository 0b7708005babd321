from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli import app, command, fail


def report_line(path: Path, size: int, report: dict) -> str:
    return (
        f"{path}  {size / 1024:.1f} KB  top-1 agreement {report['top1_agreement']:.4f}  "
        f"max abs diff {report['max_abs_diff']:.2e}  accuracy {report['accuracy']:.4f} "
        f"(Keras {report['accuracy_keras']:.4f}, {report['accuracy_delta_points']:+.2f} points) "
        f"on {report['samples']} held-out samples"
    )


def warn_ops(path: Path) -> str:
    """Print the op report's warnings (Flex/custom ops) loudly; return its one-line summary."""
    from edgekit.runtime.ops import op_report

    report = op_report(path)
    if report is None:
        return ""
    for warning in report.warnings():
        typer.secho(f"warning: {path.name} {warning}", fg=typer.colors.YELLOW, bold=True, err=True)
    return report.summary() or report.note


@app.command()
@command
def export(
    model: Annotated[Path, typer.Argument(help="A .keras model written by `edgekit train`.")],
    to: Annotated[
        str, typer.Option("--to", help="Format: tflite, onnx, or all (every format and mode).")
    ] = "tflite",
    quantize: Annotated[str, typer.Option(help="fp32, fp16, dynamic or int8.")] = "fp32",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output file (default: beside the model).")
    ] = None,
    data: Annotated[str | None, typer.Option(help="Held-out/calibration data (default: the card's).")] = None,
    calib_samples: Annotated[int, typer.Option(help="Representative samples for int8 calibration.")] = 200,
    calib_method: Annotated[
        str, typer.Option(help="ONNX int8 calibration: minmax, entropy, percentile.")
    ] = "minmax",
    io: Annotated[
        str, typer.Option("--io", help="TFLite int8 input/output type: int8, uint8, float.")
    ] = "int8",
    batch: Annotated[str | None, typer.Option(help="1 or dynamic (default: TFLite 1, ONNX dynamic).")] = None,
    max_drop: Annotated[float | None, typer.Option(help="Accuracy drop allowed, in points.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
    unsafe: Annotated[bool, typer.Option(help="Load models with Lambda layers (runs their code).")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Convert a Keras model, embed its card, and validate the file against Keras."""
    from edgekit.errors import EdgekitError, VerificationError
    from edgekit.export.api import export_model, plan_export
    from edgekit.export.base import exporter_names, get_exporter
    from edgekit.runtime.backends.keras import load_keras_model

    settings = dict(
        force=force,
        calib_samples=calib_samples,
        max_drop=max_drop,
        opset=opset,
        io=io,
        calib_method=calib_method,
        batch=batch,
    )
    if to != "all":
        options = plan_export(model, to, quantize, out, **settings)
        result = export_model(model, options, data=data, unsafe=unsafe)
        typer.echo(report_line(result.path, result.size, result.report))
        typer.echo(f"  ops: {warn_ops(result.path)}")
        return
    if out is not None:
        raise typer.BadParameter("--out names one file; with --to all the files go beside the model")
    # check every target before the first conversion, then load the model once
    plans = [
        plan_export(model, fmt, m.value, **settings)
        for fmt in exporter_names()
        for m in get_exporter(fmt).modes
    ]
    keras_model = load_keras_model(model, safe_mode=not unsafe)
    failed = 0
    for options in plans:
        try:
            result = export_model(model, options, data=data, unsafe=unsafe, model=keras_model)
            typer.echo(report_line(result.path, result.size, result.report))
            warn_ops(result.path)
        except (VerificationError, EdgekitError) as e:
            failed += 1
            fail(f"{options.out.name}: {e}")
    typer.echo(f"{len(plans) - failed} of {len(plans)} artifacts written", err=True)
    if failed:
        raise typer.Exit(1)
