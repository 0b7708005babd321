"""`edgekit evaluate`: a model file's task metrics on a dataset's held-out split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError, DataError


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
        name, source = card.dataset.get("name"), data or card.dataset.get("source")
        if not name:
            raise DataError(
                f"{Path(path).name}'s card names no dataset: pass --data and a model card with one"
            )
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
