"""Every task in the registry answers whether it classifies and scores a tiny known batch."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UnsupportedError
from edgekit.models.step import CardLike
from edgekit.runtime.detection_formats.edgekit_grid import encode_grid, grid_postprocess
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import TASKS

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

PIXELS = {"kind": "image", "size": [32, 32], "channels": 3, "scale": 1 / 255, "offset": 0.0}
ROWS = np.array([[0, 0.3, 0.3, 0.2, 0.2], [1, 0.7, 0.6, 0.3, 0.4]], np.float32)


def card(task: str, postprocess: dict | None = None) -> CardLike:
    """The parts of a model card that metrics read."""
    return CardLike(task, ("a", "b"), PIXELS, postprocess or {})


def _series_targets() -> np.ndarray:
    from edgekit.runtime.series import target_dtype

    y = np.zeros(2, dtype=target_dtype(2))
    y["future"] = [[10, 12], [12, 14]]
    y["naive"] = 11
    y["last"] = 10
    return y


def _digits(index: list[int]) -> np.ndarray:
    """Shipped held-out MNIST digits as a tanh generator gives images (-1..1)."""
    from edgekit.runtime.datasets import load_dataset

    return load_dataset("mnist", "shipped").heldout.x[index].astype(np.float32) / 127.5 - 1.0


# task -> (is it a classifier, a card, raw outputs of a batch, targets, the metrics they give)
CASES = {
    "classify-image": (True, lambda: card("classify-image"), [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])], [0, 1, 1], {"accuracy": 2 / 3}),
    "classify-text": (True, lambda: card("classify-text"), [np.array([[0.1, 0.9]])], [1], {"accuracy": 1.0}),
    "classify-audio": (True, lambda: card("classify-audio"), [np.array([[0.1, 0.9]])], [0], {"accuracy": 0.0}),
    # half the predicted foreground is true: IoU 1/2, Dice 2/3
    "segment": (False, lambda: card("segment"), [np.array([[[0.9, 0.9], [0.1, 0.1]]])[..., None]], np.array([[[1, 0], [0, 0]]]), {"iou": 0.5, "dice": 2 / 3}),
    # the training targets as outputs find every box: mAP 1
    "detect": (False, lambda: card("detect", postprocess=grid_postprocess(16)), [encode_grid(ROWS, (2, 2), 2)[None]], [ROWS], {"map50": 1.0, "precision": 1.0, "recall": 1.0}),
    # two sentences of two words: the first right, the second's last word wrong -> 3 of 4 words
    "translate": (False, lambda: CardLike("translate", ("<pad>", "<unk>", "a", "b"), {"kind": "text", "maxlen": 3}, {}), [np.eye(4)[[[2, 3, 0], [3, 3, 0]]]], ["a b", "b a"], {"token_accuracy": 0.75, "sentence_accuracy": 0.5}),
    "classify-table": (True, lambda: card("classify-table"), [np.array([[0.9, 0.1], [0.2, 0.8]])], [0, 0], {"accuracy": 0.5}),
    # a standardised target (centre 10, scale 2): outputs 0, 1, 2 are 10, 12, 14 against 10, 12, 16
    "regress": (False, lambda: CardLike("regress", ("y",), {"kind": "table", "columns": [], "target": {"name": "y", "center": 10.0, "scale": 2.0}}, {}), [np.array([[0.0], [1.0], [2.0]])], np.array([10.0, 12.0, 16.0]), {"r2": 11 / 14, "mae": 2 / 3, "rmse": (4 / 3) ** 0.5}),
    # windows ending at 10 (scale 2): outputs 0, 1 / 1, 1 are 10, 12 / 12, 12 against 10, 12 / 12, 14;
    # the seasonal-naive 11, 11 is off by 1, 1 / 1, 3: MAE 0.5 against 1.5, skill 2/3
    "forecast": (False, lambda: CardLike("forecast", ("y",), {"kind": "series", "column": "y", "window": 2, "horizon": 2, "scale": 2.0}, {}), [np.array([[0.0, 1.0], [1.0, 1.0]])], _series_targets(), {"skill": 2 / 3, "mae": 0.5, "rmse": 1.0, "naive_mae": 1.5}),
    # two real 3s and two real 7s as the generator's outputs (tanh's -1..1), asked for as 3, 3, 3, 7:
    # the reader reads all four as written, so 3 of 4 are the digit asked for; of the 3s, 2 of 3
    "generate": (False, lambda: CardLike("generate", tuple("0123456789"), {"kind": "labels", "latent": 4, "classes": 10}, {"activation": "tanh"}), [_digits([300, 301, 700, 701])], np.array([3, 3, 3, 7]), {"readback": 0.75, "readback_worst_class": 2 / 3}),
}  # fmt: skip
# tasks with no metric of their own: `evaluate` refuses them in one sentence
NO_METRICS = {"tensor"}


def test_every_task_has_a_case():
    assert set(TASKS.names()) == set(CASES) | NO_METRICS


@pytest.mark.parametrize("name", sorted(NO_METRICS))
def test_a_task_without_metrics_says_so(name):
    task = TASKS.get(name)
    assert task.classifies is False
    with pytest.raises(UnsupportedError, match=f"the {name} task has no metrics"):
        task.metrics(CardLike(name, (), {}, {}), [np.zeros((1, 2))], [0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_task_answers_classifies_and_scores_a_known_batch(name):
    classifies, make_card, outputs, y, expected = CASES[name]
    task = TASKS.get(name)
    assert task.classifies is classifies
    got = task.metrics(make_card(), outputs, y)
    if classifies:  # accuracy first, then precision/recall/F1 averages and per class (test_prf.py)
        averages = [f"{a}_{m}" for a in ("macro", "weighted") for m in ("precision", "recall", "f1")]
        assert list(got) == [*expected, *averages, "per_class"]
        assert got["accuracy"] == pytest.approx(expected["accuracy"])
    else:
        assert list(got) == list(expected) and got == pytest.approx(expected)
    assert evaluate_outputs(make_card(), outputs, y) == got  # scoring asks the task
