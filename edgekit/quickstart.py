"""`edgekit quickstart`: train the MNIST CNN on the shipped digits, export the quickstart targets
(fp32 and int8 of every format: `export.base.quickstart_targets`), validate each against Keras, and
benchmark them against Keras itself, each row in its own process as `edgekit bench` measures it."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.benchmark.runner import Benchmark, BenchReport, BenchSettings, Progress
from edgekit.errors import ConfigError
from edgekit.fileio import check_writable

MARKER = ".edgekit-quickstart"  # in every folder a quickstart made: a rerun may replace that folder

if TYPE_CHECKING:
    from edgekit.export.api import Outcome


@dataclass
class QuickstartResult:
    report: BenchReport  # the Keras row (the baseline) first, then every artifact
    seconds: float

    @property
    def table(self) -> str:
        return self.report.table()

    def save(self, path: Path) -> Path:
        """The benchmark's result file (what `edgekit compare` reads), with the quickstart's time."""
        return self.report.save(path)


def run_quickstart(
    out: Path,
    *,
    epochs: int | None = None,
    runs: int | None = None,
    max_time: float = 2.0,
    force: bool = False,
    progress: Callable[[str], None] = print,
    rows: Progress | None = None,
) -> QuickstartResult:
    from edgekit.export.base import quickstart_targets

    t0 = time.perf_counter()
    out = Path(out)
    model_path = out / "model.keras"
    wanted = quickstart_targets()
    with _own_folder(out, force, progress):
        for path in (model_path, *(t.default_path(model_path) for t in wanted)):  # refuse before training
            check_writable(path, force=force)
        settings = BenchSettings(runs=runs, max_time=max_time, data="shipped")  # checked before training
        return _run(out, model_path, wanted, epochs, settings, force, progress, rows, t0)


@contextlib.contextmanager
def _own_folder(out: Path, force: bool, progress: Callable[[str], None]):
    """The quickstart owns its folder: one an earlier quickstart made is set aside, replaced by this
    run's and removed once this run succeeds (put back if it fails: nothing is lost). A folder that
    holds anything else is left alone unless --force."""
    earlier = out.is_dir() and (out / MARKER).is_file()
    if out.is_dir() and any(out.iterdir()) and not earlier and not force:
        raise ConfigError(
            f"{out} already holds files that no quickstart made: give another --out, or pass --force"
        )
    aside = out.with_name(f".{out.name}.previous-{os.getpid()}")
    if earlier:
        progress(f"replacing the earlier quickstart in {out}")
        out.rename(aside)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `edgekit quickstart`: a rerun replaces this folder\n")
    try:
        yield
    except BaseException:
        if earlier:
            shutil.rmtree(out, ignore_errors=True)
            aside.rename(out)
        raise
    if earlier:
        shutil.rmtree(aside, ignore_errors=True)


def _run(out, model_path, wanted, epochs, settings, force, progress, rows, t0) -> QuickstartResult:
    from edgekit.export.api import export_all
    from edgekit.models.train import TrainConfig, train

    progress(f"1/3 training mnist-cnn into {out}")
    train(TrainConfig("mnist-cnn", out, data="shipped", epochs=epochs, force=force))
    progress(f"2/3 exporting {len(wanted)} artifacts and validating each against Keras")

    def tell(outcome: Outcome) -> None:
        if outcome.written:
            result, r = outcome.result, outcome.result.report
            progress(
                f"    {result.path.name}: {result.size / 1024:.1f} KB, agreement {r['top1_agreement']:.4f}, "
                f"accuracy {r['accuracy']:.4f} ({r['accuracy_delta_points']:+.2f} points)"
            )

    outcomes = export_all(
        model_path,
        wanted,
        on_outcome=tell,
        progress=lambda m: progress(f"    {m}"),
        force=force,
        data="shipped",
    )
    failed = next((o for o in outcomes if not o.written), None)
    if failed is not None:
        raise failed.error
    files = [model_path, *(o.result.path for o in outcomes)]
    progress(f"3/3 benchmarking {len(files)} files against Keras model(x), each in its own process")
    report = Benchmark(files, settings).run(progress=rows)
    return QuickstartResult(report, time.perf_counter() - t0)
