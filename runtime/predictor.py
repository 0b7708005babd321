"""A model file bound to its task: raw input in, typed results out, with per-stage times."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.runtime.backends import Session, open_model
from edgekit.runtime.tasks import Task, TaskOptions, get_task


@dataclass
class Prediction:
    results: list[Any]
    times: dict[str, float] = field(default_factory=dict)  # seconds per stage
    done: float = 0.0  # time.perf_counter() when the results were ready


class Predictor:
    """Opens a model, reads its card, and runs preprocess -> backend -> postprocess."""

    def __init__(
        self,
        path: str | Path,
        *,
        backend: str | None = None,
        threads: int | None = None,
        device: str = "auto",
        card: ModelCard | None = None,
        options: TaskOptions | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.session: Session = open_model(path, backend, threads, device)
        try:
            card = card or self.session.card
            if card is None:  # a well-known detector (BlazeFace, Ultralytics YOLO) needs none
                from edgekit.runtime.inferred_cards import infer_card

                card = infer_card(path, self.session)
            if card is None:  # any other file runs as tensors in, tensors out (the card says so)
                from edgekit.runtime.tasks.tensor import tensor_card

                card = tensor_card(path, self.session)
            if labels is not None:  # --labels: class names for a model that has none or others
                card = card.replace(labels=tuple(labels))
            self.card = card
            self.task: Task = get_task(card.task)(
                card, self.session.inputs, self.session.outputs, options or TaskOptions()
            )
        except BaseException:
            self.session.close()
            raise

    def infer(self, raw: Any) -> list[np.ndarray]:
        """The raw outputs of the model for one input."""
        return self.session.run(self.task.preprocess(raw))

    def __call__(self, raw: Any) -> Prediction:
        t0 = time.perf_counter()
        feeds = self.task.preprocess(raw)
        t1 = time.perf_counter()
        outputs = self.session.run(feeds)
        t2 = time.perf_counter()
        results = self.task.postprocess(outputs)
        t3 = time.perf_counter()
        return Prediction(results, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2}, t3)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

