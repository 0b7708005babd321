from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command, fail
from edgekit.errors import ConfigError
from edgekit.export.base import Quantization, exporter_names, get_exporter

# the choices, from the registry (importing it loads the format modules, not their converters)
FORMATS_HELP = f"Format: {', '.join(exporter_names())}, or all (every format)."
MODES_HELP = (
    f"{', '.join(q.value for q in Quantization)} (default fp32); with --to all, only this mode of "
    "every format (default: every mode)."
)


def check_choices(to: str, quantize: str | None) -> Quantization | None:
    """`--to` and `--quantize` checked before any file is read; an unknown format lists `all` too."""
    import difflib

    from edgekit.errors import UnknownNameError

    names = [*exporter_names(), "all"]
    if to not in names:
        close = difflib.get_close_matches(to, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UnknownNameError(
            f"unknown export format {to!r}: {hint}--to takes {', '.join(names[:-1])} or all (every format)"
        )
    return None if quantize is None else Quantization.parse(quantize)


def report_line(path: Path, size: int, report: dict) -> str:
    """One line per artifact: size, then what validation measured (task-generic)."""
    parts = [f"{path}  {size / 1024:.1f} KB"]
    metric = report.get("metric")
    if metric:
        parts.append(
            f"{metric} {report[metric]:.4f} (Keras {report[f'{metric}_keras']:.4f}, "
            f"{report[f'{metric}_delta_points']:+.2f} points)"
        )
    if "top1_agreement" in report:
        parts.append(f"top-1 agreement {report['top1_agreement']:.4f}")
    if "box_agreement" in report:
        parts.append(
            f"box agreement {report['box_agreement']:.3f} with Keras's {report['boxes_keras']} boxes "
            f"(matched IoU {report['box_iou']:.3f})"
        )
    parts.append(f"max abs diff {report['max_abs_diff']:.2e}")
    if report.get("labelled", True):
        what = "held-out samples"
    elif "generated" in report.get("data", ""):
        what = "generated inputs, no labels"
    else:
        what = "samples of --data, no labels"
    parts.append(f"on {report['samples']} {what}")
    line = "  ".join(parts)
    kept = report.get("float_layers")
    if kept:
        line += "\n  " + float_layers_line(kept)
    return line


def warn_report(path: Path, report: dict) -> None:
    """What a parity report warns of (outputs that prove nothing), loudly on stderr."""
    if report.get("warning"):
        typer.secho(f"warning: {path.name}: {report['warning']}", fg=typer.colors.YELLOW, bold=True, err=True)


def float_layers_line(kept: dict) -> str:
    """Which layers stayed float in a quantized file, and the measured loss that put them there."""
    if not kept["layers"]:
        return f"float layers: none kept ({kept.get('note') or 'no retry passed the bar'})"
    why = ", ".join(f"{c['tensor']} ({c['op']}, loss {c['loss']:.2f})" for c in kept["why"])
    forced = f"forced by --float-layers: {', '.join(kept['forced'])}" if kept["forced"] else ""
    return f"float layers ({len(kept['layers'])}): " + "; ".join(p for p in (why, forced) if p)


def warn_ops(path: Path) -> str:
    """Print the op report's warnings (Flex/custom ops) loudly; return its one-line summary."""
    from edgekit.runtime.files import ModelFile

    report = ModelFile.open(path).ops
    if report is None:
        return ""
    for warning in report.warnings():
        typer.secho(f"warning: {path.name} {warning}", fg=typer.colors.YELLOW, bold=True, err=True)
    return report.summary() or report.note


@app.command()
@command
def export(
    model: Annotated[Path, typer.Argument(help="A .keras or .h5 model, or a TensorFlow SavedModel folder.")],
    to: Annotated[str, typer.Option("--to", help=FORMATS_HELP)] = "tflite",
    quantize: Annotated[str | None, typer.Option(help=MODES_HELP)] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file, or folder (any with --to all). Default: beside the model."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Held-out/calibration data: the recipe's (default), or an image folder (one "
            "sub-folder per class) or .npz (x, y) for a model of your own."
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="A model with no card: its task (e.g. classify-image).")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="A model with no card: a labels file (one per line) or a,b,c.")
    ] = None,
    normalize: Annotated[
        str | None, typer.Option(help="A model with no card: its pixel range, 0..1, -1..1 or none.")
    ] = None,
    scale: Annotated[float | None, typer.Option(help="Or: input = pixel * scale + offset.")] = None,
    offset: Annotated[float | None, typer.Option(help="See --scale.")] = None,
    calib_samples: Annotated[
        int, typer.Option(min=1, help="Representative samples for int8 calibration.")
    ] = 200,
    calib_method: Annotated[
        str, typer.Option(help="ONNX int8 calibration: minmax, entropy, percentile.")
    ] = "minmax",
    io: Annotated[
        str, typer.Option("--io", help="TFLite int8 input/output type: int8, uint8, float.")
    ] = "int8",
    batch: Annotated[str | None, typer.Option(help="1 or dynamic (default: TFLite 1, ONNX dynamic).")] = None,
    max_drop: Annotated[float | None, typer.Option(min=0, help="Metric drop allowed, in points.")] = None,
    opset: Annotated[int, typer.Option(min=13, max=18, help="ONNX opset (13 to 18).")] = 17,
    simplify: Annotated[
        bool, typer.Option("--simplify/--no-simplify", help="Simplify the ONNX graph (onnxslim).")
    ] = True,
    report: Annotated[
        Path | None, typer.Option(help="Write every artifact's parity report to this JSON file.")
    ] = None,
    float_layers: Annotated[
        str | None,
        typer.Option(
            help="int8/dynamic: keep these layers in float (comma list of node names, as the report "
            "lists them, or a part of one such as a Keras layer name)."
        ),
    ] = None,
    selective: Annotated[
        bool,
        typer.Option(
            "--selective/--no-selective",
            help="A quantized file that misses its bar retries with its worst layers in float.",
        ),
    ] = True,
    unsafe: Annotated[
        bool,
        typer.Option(
            help="Load models that run code: Lambda layers, SavedModel folders (their serving function)."
        ),
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Convert a Keras model, embed its card, and validate the file against Keras."""
    from edgekit.export.api import (
        Outcome,
        RejectedExport,
        export_all,
        export_model,
        plan_export,
        report_entry,
        write_report,
    )
    from edgekit.export.base import targets
    from edgekit.export.describe import CardHints
    from edgekit.export.source import ExportSource
    from edgekit.fileio import check_writable

    mode = check_choices(to, quantize)

    settings = dict(
        force=force,
        calib_samples=calib_samples,
        max_drop=max_drop,
        opset=opset,
        io=io,
        calib_method=calib_method,
        batch=batch,
        simplify=simplify,
        data=data,
        float_layers=tuple(n.strip() for n in (float_layers or "").split(",") if n.strip()),
        selective=selective,
        hints=CardHints(task=task, labels=labels, normalize=normalize, scale=scale, offset=offset),
    )
    if report is not None:
        check_writable(report, force=True)
    # the file and its card, read once for every target; each long step said on stderr
    source = ExportSource.open(model, unsafe=unsafe, progress=lambda m: typer.echo(f"  {m}", err=True))
    if task is None and source.card is None:
        typer.secho(
            f"{model.name} has no edgekit card: exporting it as a tensor model (arrays in, arrays out); "
            "pass --task (e.g. classify-image) and --labels for an image classifier's pre/post-processing",
            fg=typer.colors.YELLOW,
            err=True,
        )
    entries: list[dict] = []

    def save_report(entries: list[dict]) -> None:
        if report is not None and entries:
            write_report(report, model, entries)
            typer.echo(f"wrote {report} (every artifact's parity report)", err=True)

    if to != "all":
        mode = mode or Quantization.FP32
        if out is not None and (out.is_dir() or not out.suffix):  # a folder: the default name in it
            out = out / get_exporter(to).default_path(model, mode).name
        options = plan_export(source, to, mode.value, out, **settings)
        try:
            result = export_model(source, options)
        except RejectedExport as e:
            entries.append(report_entry(options, e.result, str(e)))
            save_report(entries)
            raise
        entries.append(report_entry(options, result))
        save_report(entries)
        typer.echo(report_line(result.path, result.size, result.report))
        warn_report(result.path, result.report)
        typer.echo(f"  ops: {warn_ops(result.path)}")
        return
    if out is not None and out.suffix and not out.is_dir():
        raise ConfigError(
            f"--out {out} looks like a file name, but --to all writes many files: give a folder"
        )

    def tell(outcome: Outcome) -> None:
        if outcome.skipped:
            typer.secho(f"skip: {outcome.error}", fg=typer.colors.YELLOW, err=True)
        elif outcome.written:
            typer.echo(report_line(outcome.result.path, outcome.result.size, outcome.result.report))
            warn_report(outcome.result.path, outcome.result.report)
            warn_ops(outcome.result.path)
        else:
            fail(f"{outcome.options.out.name}: {outcome.error}")

    wanted = targets((mode,) if mode is not None else None)  # --quantize int8: every format's int8
    if not wanted:
        raise ConfigError(f"no export format writes {mode.value}")
    outcomes = export_all(source, wanted, on_outcome=tell, out_dir=out, **settings)
    save_report([o.entry() for o in outcomes])
    tried = [o for o in outcomes if not o.skipped]
    written = sum(o.written for o in tried)
    typer.echo(f"{written} of {len(tried)} artifacts written", err=True)
    if written < len(tried):
        raise typer.Exit(1)
