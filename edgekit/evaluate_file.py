"""`edgekit evaluate`: a model file's task metrics on a dataset's held-out split."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError, DataError

# The names a card's `dataset.source` may hold besides a path: the loaders' own keywords. "keras"
# is not among them: it downloads, and a card never makes edgekit go to the network.
DATA_NAMES = ("auto", "shipped", "generated")


def card_dataset(card: Any, model: Path | None, data: str | None) -> tuple[str, str | None]:
    """The (dataset name, data reference) to evaluate a model on: `data` when the user gives it,
    otherwise the card's, checked first. A card comes with the file from elsewhere, so its reference
    is a known dataset's name, the Keras cache (read as "auto": no download) or a path inside the
    model's own folder; never a path elsewhere (`/etc/passwd`, `/`), unless the user passes --data."""
    from edgekit.runtime.datasets import DATASETS
    from edgekit.runtime.datasets.text import keras_datasets_folder
    from edgekit.runtime.tasks import get_task

    label = Path(model).name if model is not None else "the model"
    name = card.dataset.get("name")
    if not name and data and get_task(card.task).dataset:
        # a model from elsewhere (an Ultralytics or MediaPipe file): its task's loader reads --data
        return str(get_task(card.task).dataset), data
    if not isinstance(name, str) or not name:
        hint = "pass --data" if get_task(card.task).dataset else "pass --data and a model card with one"
        raise DataError(f"{label}'s card names no dataset: {hint}")
    if name not in DATASETS.names():
        raise DataError(f"{label}'s card names dataset {name[:40]!r}, which edgekit does not know")
    if data:
        return name, data
    source = card.dataset.get("source")
    if source in (None, "", *DATA_NAMES):
        return name, source or None
    if not isinstance(source, str):
        raise DataError(f"{label}'s card field dataset.source is not a name or a path: pass --data")
    if source == "keras":
        return name, "auto"  # the Keras cache when it is there; `--data keras` downloads
    path = Path(source)
    if model is not None and not path.is_absolute():
        path = Path(model).parent / path
    path = Path(os.path.realpath(path))
    if _inside(path, Path(os.path.realpath(keras_datasets_folder()))):
        return name, "auto"
    if model is not None and _inside(path, Path(os.path.realpath(Path(model).parent))):
        return name, str(path)
    raise DataError(
        f"{label}'s card points its data at {source[:200]!r}, outside the model's folder: "
        "pass --data with that path if you trust it, or --data with another dataset"
    )


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def evaluate_model(
    path: Path,
    *,
    data: str | None = None,
    limit: int | None = None,
    backend: str | None = None,
    threads: int | None = None,
    confusion: Path | None = None,
) -> dict[str, Any]:
    """Run `path` over the held-out split of its card's dataset (or `data`) and score it."""
    from edgekit.fileio import check_writable
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.scoring import evaluate

    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    if confusion is not None:
        check_writable(confusion, force=True)
    with Predictor(path, backend=backend, threads=threads) as predictor:
        card = predictor.card
        name, source = card_dataset(card, path, data)
        dataset = load_dataset(name, source)
        split = dataset.heldout.head(limit)
        if len(split) == 0:
            raise DataError(f"the held-out split of {dataset.description} is empty")
        t0 = time.perf_counter()
        result = evaluate(predictor, split.x, split.y)
        seconds = time.perf_counter() - t0
        backend_used = f"{predictor.session.backend} on {predictor.session.device}"
    metrics = result["metrics"]
    if confusion is not None:
        from edgekit.runtime.tasks import get_task

        if not get_task(card.task).classifies:
            raise ConfigError(f"--confusion is for classifiers; {Path(path).name} is a {card.task} model")
        from edgekit.plots import confusion_matrix, plot_confusion
        from edgekit.runtime.metrics import class_probabilities

        predicted = class_probabilities(card, result["outputs"][0]).argmax(1)
        matrix = confusion_matrix(predicted, split.y, len(card.labels))
        plot_confusion(matrix, card.labels, confusion, title=Path(path).name)
    return {
        "model": str(path),
        "task": card.task,
        "metrics": metrics,
        "samples": len(split),
        "data": dataset.description,
        "backend": backend_used,
        "seconds": round(seconds, 3),
    }


def per_class_table(metrics: dict[str, Any]) -> list[str]:
    """A classifier's per-class precision, recall, F1 and support as text rows, then the macro and
    weighted averages; nothing for a task that reports no `per_class`."""
    per_class = metrics.get("per_class")
    if not isinstance(per_class, dict) or not per_class:
        return []
    width = max(12, *(len(str(name)) for name in per_class))
    head = f"{'class':<{width}}  precision     recall         f1    support"
    rows = [head]
    for name, s in per_class.items():
        scores = f"{s['precision']:9.4f}  {s['recall']:9.4f}  {s['f1']:9.4f}"
        rows.append(f"{str(name):<{width}}  {scores}  {s['support']:9d}")
    total = sum(int(s["support"]) for s in per_class.values())
    for kind in ("macro", "weighted"):
        values = [metrics.get(f"{kind}_{k}") for k in ("precision", "recall", "f1")]
        if all(isinstance(v, float) for v in values):
            p, r, f = values
            rows.append(f"{kind + ' avg':<{width}}  {p:9.4f}  {r:9.4f}  {f:9.4f}  {total:9d}")
    return rows
