"""`plan_export` checks a request in milliseconds; `export_model` converts, embeds the card,
validates against Keras and writes atomically; `export_all` does that for many targets (every one,
by default). Each takes the model as an `ExportSource` (or a path, opened into one), which reads
the model's file and card once, loads the Keras model once and keeps the samples and Keras's
outputs on them: every target of a run shares them. The CLI, the quickstart and the benchmark all
call these."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.card import ModelCard, now_iso
from edgekit.errors import ConfigError, EdgekitError, VerificationError
from edgekit.export.base import ExportOptions, Quantization, Target, exporter_names, get_exporter, targets
from edgekit.export.data import has_own_data
from edgekit.export.describe import CardHints
from edgekit.export.limits import UnsupportedPair, check_pair, graph_from_config
from edgekit.export.selective import keep_failing_layers_float
from edgekit.export.source import ExportSource
from edgekit.export.validate import parity_report
from edgekit.fileio import check_writable, write_bytes, write_text
from edgekit.runtime.files import ModelFile
from edgekit.runtime.weights_digest import PLACEHOLDER, seal

Source = str | Path | ExportSource


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    report: dict[str, Any]
    size: int
    seconds: float


class RejectedExport(VerificationError):
    """An artifact that missed its bar; written as `<name>.rejected`, with its report."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


def plan_export(
    model: Source, fmt: str, quantization: str, out: Path | None = None, **options: Any
) -> ExportOptions:
    """Check the request before any conversion (no TensorFlow is imported): format, mode, what the
    model's layers allow, that the model is described and has data for int8, the output path."""
    exporter = get_exporter(fmt)
    q = Quantization.parse(quantization)
    exporter.check(q)
    source = ExportSource.open(model)
    hints = options.pop("hints", None) or CardHints()
    opts = ExportOptions(
        format=fmt,
        quantization=q,
        out=Path(out or exporter.default_path(source.path, q)),
        hints=hints,
        **options,
    )
    config = source.config
    if config is not None:
        # by rank (the device format first), whichever module was imported first
        formats = {name: tuple(m.value for m in get_exporter(name).modes) for name in exporter_names()}
        check_pair(graph_from_config(config), fmt, q.value, opts.batch, formats)
    card = source.card  # none and no --task: a plain tensor model
    hints.check_task()
    if q is Quantization.INT8 and not opts.data and not has_own_data(card):
        what = (
            "an .npz of its input arrays"
            if card is None and not hints.task
            else "an image folder, one sub-folder per class, or an .npz of x and y"
        )
        raise UnsupportedPair(
            f"{fmt} int8 is calibrated on real samples and {source.path.name} names no dataset: pass "
            f"--data ({what})"
        )
    check_writable(opts.out, force=opts.force)
    return opts


def export_model(model: Source, options: ExportOptions, *, unsafe: bool = False) -> ExportResult:
    """Export one artifact. A result that misses its bar is written as `<name>.rejected` and raises
    `RejectedExport`."""
    t0 = time.perf_counter()
    source = ExportSource.open(model, unsafe=unsafe)
    exporter = get_exporter(options.format)
    samples = source.samples(options.hints, options.data, options.calib_samples)
    heldout = samples.data.heldout
    calib = samples.calibration if options.quantization is Quantization.INT8 else None
    card = samples.card.replace(
        format=exporter.format, quantization=options.quantization.value, created=now_iso()
    )

    def trial(opts: ExportOptions) -> tuple[bytes, dict[str, Any]]:
        raw = exporter.convert(source.model, card, opts, calib)
        # validated in memory, the card it carries already known: nothing is read back
        artifact = ModelFile.of_bytes(options.out, exporter.embed(raw, card), card)
        report = parity_report(
            artifact,
            card,
            samples.reference,
            heldout,
            opts.bar(),
            labelled=samples.data.labelled,
            data=samples.data.description,
        )
        return raw, report

    # a quantized file that misses its bar: its worst layers in float, then validated again
    inputs = calib if calib is not None else samples.calibration
    raw, report = keep_failing_layers_float(source.model, card, options, inputs, trial, trial(options))
    card = card.replace(parity=report, io_quantization=report.pop("io_quantization"))
    if exporter.kind.sealed:  # the file's digest, in its card
        final = seal(exporter.embed(raw, card.replace(file_sha256=PLACEHOLDER)))
    else:  # a format whose bytes do not hold the card's text as it is (compressed): no digest
        final = exporter.embed(raw, card)
    if not report["passed"]:
        rejected = options.out.with_name(options.out.name + ".rejected")
        write_bytes(rejected, final)
        result = ExportResult(rejected, card, report, len(final), time.perf_counter() - t0)
        raise RejectedExport(
            f"{options.out.name} failed validation against Keras ({'; '.join(report['failures'])}): "
            f"written as {rejected} for inspection, not as {options.out.name}",
            result,
        )
    write_bytes(options.out, final)
    return ExportResult(options.out, card, report, len(final), time.perf_counter() - t0)


@dataclass(frozen=True)
class Outcome:
    """What became of one target of `export_all`: written, rejected (its `.rejected` file in
    `result`), failed, or skipped at planning because the model cannot be exported to it."""

    target: Target
    options: ExportOptions | None  # None: skipped at planning
    result: ExportResult | None = None
    error: EdgekitError | None = None

    @property
    def written(self) -> bool:
        return self.result is not None and self.error is None

    @property
    def skipped(self) -> bool:
        return self.options is None

    def entry(self) -> dict[str, Any]:
        """This target's entry in the `--report` JSON."""
        if self.options is None:
            return {
                "format": self.target.format,
                "quantization": self.target.quantization.value,
                "written": False,
                "error": str(self.error),
            }
        return report_entry(self.options, self.result, str(self.error or ""))


def export_all(
    model: Source,
    wanted: Sequence[Target] | None = None,
    *,
    unsafe: bool = False,
    keras_model: Any = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_start: Callable[[Target, ExportOptions], None] | None = None,
    out_dir: Path | None = None,
    **settings: Any,
) -> list[Outcome]:
    """Export each of `wanted` (default: every target) with the same `settings` (`plan_export`'s
    options, each file under its default name, beside the model or in `out_dir`). Every target is
    planned before the first conversion: one this model cannot do (`UnsupportedPair`) is skipped,
    any other bad request raises before any work. Then the model is loaded once and each target
    exported atomically; one that fails does not stop the others. `on_start` hears of each target as
    its conversion begins, `on_outcome` of each outcome as it happens."""
    source = ExportSource.open(model, unsafe=unsafe, model=keras_model)
    model_path = source.path
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir} is a file: with many files to write, give a folder")
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    plans: list[tuple[Target, ExportOptions]] = []
    for target in targets() if wanted is None else wanted:
        out = None if out_dir is None else Path(out_dir) / target.default_path(model_path).name
        try:
            options = plan_export(source, target.format, target.quantization.value, out, **settings)
        except UnsupportedPair as e:
            record(Outcome(target, None, error=e))
            continue
        plans.append((target, options))
    for target, options in plans:
        if on_start is not None:
            on_start(target, options)
        try:
            record(Outcome(target, options, export_model(source, options)))
        except EdgekitError as e:
            record(Outcome(target, options, getattr(e, "result", None), e))
    return outcomes


def write_report(path: Path, model_path: Path, entries: Sequence[dict[str, Any]]) -> Path:
    """The `--report` JSON: every artifact asked for, its parity report, or why it was not written."""
    doc = {"model": str(model_path), "created": now_iso(), "artifacts": list(entries)}
    return write_text(Path(path), json.dumps(doc, indent=2, default=_json_default) + "\n")


def report_entry(options: ExportOptions, result: ExportResult | None, error: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "format": options.format,
        "quantization": options.quantization.value,
        "path": str(result.path if result else options.out),
        "written": result is not None and not error,
    }
    if result is not None:
        entry.update(size_bytes=result.size, seconds=round(result.seconds, 2), report=result.card.parity)
    if error:
        entry["error"] = error
    return entry


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
