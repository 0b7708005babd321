"""`plan_export` checks a request in milliseconds; `export_model` converts, embeds the card,
validates against Keras and writes atomically; `export_all` does that for many targets (every one,
by default), loading the model once. The CLI, the quickstart and the benchmark all call these."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard, now_iso
from edgekit.errors import ConfigError, EdgekitError, VerificationError
from edgekit.export.base import ExportOptions, Quantization, Target, exporter_names, get_exporter, targets
from edgekit.export.data import eval_data, has_own_data
from edgekit.export.limits import UnsupportedPair, check_pair, graph_from_config
from edgekit.export.model_files import CardHints, card_for, existing_card, load_model, model_kind
from edgekit.export.selective import keep_failing_layers_float
from edgekit.export.validate import parity_report
from edgekit.fileio import check_writable, temporary_dir, write_bytes, write_text
from edgekit.runtime.weights_digest import PLACEHOLDER, seal


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
    model_path: Path, fmt: str, quantization: str, out: Path | None = None, **options: Any
) -> ExportOptions:
    """Check the request before any conversion (no TensorFlow is imported): format, mode, what the
    model's layers allow, that the model is described and has data for int8, the output path."""
    exporter = get_exporter(fmt)
    q = Quantization.parse(quantization)
    exporter.check(q)
    model_path = Path(model_path)
    kind = model_kind(model_path)
    hints = options.pop("hints", None) or CardHints()
    opts = ExportOptions(
        format=fmt,
        quantization=q,
        out=Path(out or exporter.default_path(model_path, q)),
        hints=hints,
        **options,
    )
    config = kind.config(model_path)
    if config is not None:
        # by rank (the device format first), whichever module was imported first
        formats = {name: tuple(m.value for m in get_exporter(name).modes) for name in exporter_names()}
        check_pair(graph_from_config(config), fmt, q.value, opts.batch, formats)
    card = existing_card(model_path)  # none and no --task: a plain tensor model
    hints.check_task()
    if q is Quantization.INT8 and not opts.data and not has_own_data(card):
        what = (
            "an .npz of its input arrays"
            if card is None and not hints.task
            else "an image folder, one sub-folder per class, or an .npz of x and y"
        )
        raise UnsupportedPair(
            f"{fmt} int8 is calibrated on real samples and {model_path.name} names no dataset: pass "
            f"--data ({what})"
        )
    check_writable(opts.out, force=opts.force)
    return opts


def keras_outputs(model: Any, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    """The model's outputs, called eagerly as a Keras user calls it (one array per output)."""
    parts: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch], training=False)
        parts.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


def export_model(
    model_path: Path,
    options: ExportOptions,
    *,
    unsafe: bool = False,
    model: Any = None,
) -> ExportResult:
    """Export one artifact. A result that misses its bar is written as `<name>.rejected` and raises
    `RejectedExport`."""
    from edgekit.runtime.features import card_inputs

    t0 = time.perf_counter()
    model_path = Path(model_path)
    exporter = get_exporter(options.format)
    model = model if model is not None else load_model(model_path, safe_mode=not unsafe)
    data = options.data
    hints = options.hints or CardHints()
    card = existing_card(model_path)
    samples = None
    if card is None or hints.given():
        # a card made from the flags; image-folder data may name the classes
        base = card_for(model, model_path, hints, card=card)
        samples = eval_data(base, data, options.calib_samples)
        card = card_for(model, model_path, hints, card=card, labels=samples.labels)
    samples = samples or eval_data(card, data, options.calib_samples)
    calib = None
    if options.quantization is Quantization.INT8 and samples.calib is not None:
        calib = card_inputs(card, samples.calib)
    reference = keras_outputs(model, card_inputs(card, samples.heldout))
    card = card.replace(format=exporter.format, quantization=options.quantization.value, created=now_iso())

    def trial(opts: ExportOptions) -> tuple[bytes, dict[str, Any]]:
        raw = exporter.convert(model, card, opts, calib)
        with temporary_dir("export") as tmp:
            path = Path(tmp, f"trial{exporter.suffix}")
            path.write_bytes(exporter.embed(raw, card))
            report = parity_report(
                path,
                card,
                reference,
                samples.heldout,
                opts.bar(),
                labelled=samples.labelled,
                data=samples.description,
            )
        return raw, report

    # a quantized file that misses its bar: its worst layers in float, then validated again
    inputs = calib if calib is not None or samples.calib is None else card_inputs(card, samples.calib)
    raw, report = keep_failing_layers_float(model, card, options, inputs, trial, trial(options))
    card = card.replace(parity=report, io_quantization=report.pop("io_quantization"))
    final = seal(exporter.embed(raw, card.replace(file_sha256=PLACEHOLDER)))  # the file's digest
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
    model_path: Path,
    wanted: Sequence[Target] | None = None,
    *,
    unsafe: bool = False,
    model: Any = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    out_dir: Path | None = None,
    **settings: Any,
) -> list[Outcome]:
    """Export each of `wanted` (default: every target) with the same `settings` (`plan_export`'s
    options, each file under its default name, beside the model or in `out_dir`). Every target is
    planned before the first conversion: one this model cannot do (`UnsupportedPair`) is skipped,
    any other bad request raises before any work. Then the model is loaded once and each target
    exported atomically; one that fails does not stop the others. `on_outcome` hears of each as it happens."""
    model_path = Path(model_path)
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
            options = plan_export(model_path, target.format, target.quantization.value, out, **settings)
        except UnsupportedPair as e:
            record(Outcome(target, None, error=e))
            continue
        plans.append((target, options))
    if plans and model is None:
        model = load_model(model_path, safe_mode=not unsafe)
    for target, options in plans:
        try:
            record(Outcome(target, options, export_model(model_path, options, unsafe=unsafe, model=model)))
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
