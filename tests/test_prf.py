"""Precision, recall and F1 from a confusion matrix, against values worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.runtime.metrics import averaged, classification_scores, precision_recall_f1

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too


def test_three_classes_by_hand():
    # rows: true class, columns: predicted
    m = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    s = precision_recall_f1(m)
    # precision: tp / column sum = 5/7, 3/4, 4/5; recall: tp / row sum = 5/6, 3/6, 4/4
    assert s["precision"] == pytest.approx([5 / 7, 3 / 4, 4 / 5])
    assert s["recall"] == pytest.approx([5 / 6, 1 / 2, 1.0])
    f1 = [2 * p * r / (p + r) for p, r in [(5 / 7, 5 / 6), (3 / 4, 1 / 2), (4 / 5, 1.0)]]
    assert s["f1"] == pytest.approx(f1)  # 10/13, 3/5, 8/9
    assert s["f1"] == pytest.approx([10 / 13, 3 / 5, 8 / 9])
    assert s["support"].tolist() == [6, 6, 4]
    avg = averaged(s)
    assert avg["macro_precision"] == pytest.approx((5 / 7 + 3 / 4 + 4 / 5) / 3)
    assert avg["macro_recall"] == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)
    assert avg["macro_f1"] == pytest.approx((10 / 13 + 3 / 5 + 8 / 9) / 3)
    # weighted by support 6, 6, 4 of 16
    assert avg["weighted_precision"] == pytest.approx((6 * 5 / 7 + 6 * 3 / 4 + 4 * 4 / 5) / 16)
    assert avg["weighted_recall"] == pytest.approx(12 / 16)  # = accuracy, always
    assert avg["weighted_f1"] == pytest.approx((6 * 10 / 13 + 6 * 3 / 5 + 4 * 8 / 9) / 16)


def test_a_class_never_predicted_has_precision_zero_not_nan():
    # class 2 is present (3 samples) but never predicted: precision 0/0 -> 0 by convention
    # (scikit-learn's zero_division=0), recall 0/3 = 0, F1 0
    m = np.array([[4, 0, 0], [1, 2, 0], [2, 1, 0]])
    s = precision_recall_f1(m)
    assert s["precision"].tolist() == pytest.approx([4 / 7, 2 / 3, 0.0])
    assert s["recall"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert s["f1"][2] == 0.0 and np.isfinite(s["f1"]).all()
    avg = averaged(s)
    assert avg["macro_precision"] == pytest.approx((4 / 7 + 2 / 3) / 3)
    assert all(np.isfinite(v) for v in avg.values())


def test_a_class_absent_from_the_data_scores_zero_and_counts_in_the_macro_average():
    m = np.array([[3, 0], [0, 0]])  # class 1: no samples, never predicted
    s = precision_recall_f1(m)
    assert s["precision"].tolist() == [1.0, 0.0] and s["recall"].tolist() == [1.0, 0.0]
    avg = averaged(s)
    assert avg["macro_f1"] == 0.5 and avg["weighted_f1"] == 1.0


def test_classification_scores_from_labels_keeps_accuracy_first_and_is_plain_json():
    actual = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 0, 1, 1, 1, 1])  # "c" never predicted
    scores = classification_scores(predicted, actual, ("a", "b", "c"))
    assert next(iter(scores)) == "accuracy" and scores["accuracy"] == pytest.approx(5 / 8)
    assert scores["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert scores["per_class"]["b"]["precision"] == pytest.approx(2 / 5)
    assert scores["per_class"]["a"]["recall"] == pytest.approx(3 / 4)
    json.dumps(scores)  # no numpy scalars, no NaN


def test_a_classifier_task_reports_them(mnist):
    from edgekit.card import ModelCard, TensorSpec
    from edgekit.runtime.scoring import evaluate_outputs

    card = ModelCard(
        task="classify-image",
        labels=tuple("0123456789"),
        input=TensorSpec("image", (None, 784), "float32", "NC"),
        output=TensorSpec("scores", (None, 10), "float32", "NC"),
        postprocess={"activation": "softmax"},
    )
    y = mnist.heldout.y[:50]
    scores = np.eye(10)[y]
    scores[:5] = np.eye(10)[(y[:5] + 1) % 10]  # 5 wrong
    metrics = evaluate_outputs(card, [scores], y)
    keys = list(metrics)
    assert keys[0] == "accuracy" and metrics["accuracy"] == pytest.approx(0.9)
    assert {"macro_precision", "macro_recall", "macro_f1", "weighted_f1"} <= set(keys)
    assert sum(row["support"] for row in metrics["per_class"].values()) == 50
