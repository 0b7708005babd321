"""`export_model`: convert, embed the card, validate against Keras, write atomically."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.card import ModelCard, now_iso
from edgekit.errors import ConfigError, ModelFileError, VerificationError
from edgekit.export.base import ExportOptions, Quantization, get_exporter
from edgekit.export.validate import parity_report
from edgekit.fileio import check_writable, write_bytes
from edgekit.models.datasets import load_dataset
from edgekit.models.train import card_inputs
from edgekit.runtime.backends import check_model_file
from edgekit.runtime.backends.keras import card_path_for, load_keras_model, read_keras_card


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    report: dict[str, Any]
    size: int
    seconds: float


def plan_export(
    model_path: Path, fmt: str, quantization: str, out: Path | None = None, **options: Any
) -> ExportOptions:
    """Check the request before any conversion: format, mode, output path."""
    exporter = get_exporter(fmt)
    q = Quantization.parse(quantization)
    exporter.check(q)
    model_path = check_model_file(Path(model_path))
    if model_path.suffix.lower() not in (".keras", ".h5"):
        raise ConfigError(f"{model_path.name} is not a Keras model: export takes a .keras or .h5 file")
    opts = ExportOptions(
        format=fmt, quantization=q, out=Path(out or exporter.default_path(model_path, q)), **options
    )
    check_writable(opts.out, force=opts.force)
    return opts


def export_model(
    model_path: Path,
    options: ExportOptions,
    *,
    data: str | None = None,
    unsafe: bool = False,
    model: Any = None,
) -> ExportResult:
    """Export one artifact. A result that misses its bar is written as `<name>.rejected` and raises."""
    t0 = time.perf_counter()
    model_path = Path(model_path)
    exporter = get_exporter(options.format)
    card = read_keras_card(model_path)
    if card is None:
        raise ModelFileError(
            f"{model_path} has no model card (looked for {card_path_for(model_path)}): train it with "
            "`edgekit train`, or put its card.json beside it"
        )
    model = model if model is not None else load_keras_model(model_path, safe_mode=not unsafe)
    dataset = load_dataset(card.dataset.get("name", ""), data or card.dataset.get("source"))
    calib = card_inputs(card, dataset.train.head(options.calib_samples))
    reference = model.predict(card_inputs(card, dataset.heldout), verbose=0, batch_size=256)

    raw = exporter.convert(model, card, options, calib)
    card = card.replace(format=exporter.format, quantization=options.quantization.value, created=now_iso())
    with tempfile.TemporaryDirectory(prefix="edgekit-export-") as tmp:
        trial = Path(tmp, f"trial{exporter.suffix}")
        trial.write_bytes(exporter.embed(raw, card))
        report = parity_report(trial, reference, dataset.heldout, options.bar())
    card = card.replace(parity=report, io_quantization=report.pop("io_quantization"))
    final = exporter.embed(raw, card)
    if not report["passed"]:
        rejected = options.out.with_name(options.out.name + ".rejected")
        write_bytes(rejected, final)
        raise VerificationError(
            f"{options.out.name} failed validation against Keras ({'; '.join(report['failures'])}): "
            f"written as {rejected} for inspection, not as {options.out.name}"
        )
    write_bytes(options.out, final)
    return ExportResult(options.out, card, report, len(final), time.perf_counter() - t0)
