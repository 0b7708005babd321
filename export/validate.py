"""Every export is validated: the artifact runs through the edgekit runtime on held-out samples and
is compared with the Keras model it came from.

Task-generic: the max abs difference of the raw (dequantized) outputs always; for a classifier the
top-1 agreement; with labelled data the task's metric (`edgekit.runtime.metrics`: accuracy, IoU,
mAP) of the artifact and of Keras, and the delta in points, which the mode's bar holds; for a
classifier also every class's precision, recall and F1, the file's beside Keras's."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.export.base import Bar
from edgekit.runtime.datasets import Split
from edgekit.runtime.files import ModelFile
from edgekit.runtime.metrics import class_probabilities
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.preprocess import dequantize
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task


def is_classifier(card: ModelCard) -> bool:
    return get_task(card.task).classifies


def run_artifact(artifact: Path | ModelFile, items: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The artifact's float outputs for raw items (one array per model output, one row per item),
    and the quantization of its integer input/output tensors."""
    with Predictor(artifact) as predictor:
        session = predictor.session
        rows = [predictor.infer(item) for item in items]
        io = {
            name: {"scale": info.quant[0], "zero_point": info.quant[1], "dtype": info.dtype.name}
            for name, info in (("input", session.inputs[0]), ("output", session.outputs[0]))
            if info.quant is not None
        }
        quants = [info.quant for info in session.outputs]
    outputs = []
    for j, quant in enumerate(quants):
        values = [r[j][0] if r[j].ndim and r[j].shape[0] == 1 else r[j] for r in rows]  # drop batch 1
        out = np.stack(values)
        if quant is not None and out.dtype.kind in "iu":
            out = dequantize(out, *quant)
        outputs.append(out.astype(np.float32))
    return outputs, io


def side_by_side(ours: dict[str, dict], keras: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Per class: the file's precision, recall and F1 beside Keras's (`f1` and `f1_keras`), so a
    quantized model that loses one class shows it even when its accuracy barely moves."""
    table: dict[str, dict[str, Any]] = {}
    for name, row in ours.items():
        ref = keras.get(name, {})
        entry: dict[str, Any] = {"support": row.get("support")}
        for kind in ("precision", "recall", "f1"):
            entry[kind] = row[kind]
            entry[f"{kind}_keras"] = ref.get(kind)
        table[name] = entry
    return table


def in_reference_order(got: list[np.ndarray], reference: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The artifact's outputs in Keras's order: the TFLite converter may list a multi-head model's
    outputs in another order (a YOLO's two heads), told apart here by their shapes."""
    if len(got) != len(reference) or all(g.shape == r.shape for g, r in zip(got, reference, strict=True)):
        return got
    shapes = [g.shape for g in got]
    if sorted(map(str, shapes)) != sorted(str(r.shape) for r in reference) or len(set(shapes)) != len(got):
        return got  # not a permutation that shapes alone tell apart: compared as they are
    by_shape = {g.shape: g for g in got}
    return [by_shape[r.shape] for r in reference]


def parity_report(
    artifact: Path | ModelFile,
    card: ModelCard,
    reference: Sequence[np.ndarray],
    heldout: Split,
    bar: Bar,
    *,
    labelled: bool = True,
    data: str = "",
) -> dict[str, Any]:
    """Compare an artifact with the Keras outputs `reference` (per model output, one row per held-out
    item) and, when the data is labelled, the task metric of both."""
    t0 = time.perf_counter()
    got, io = run_artifact(artifact, heldout.x)
    got = in_reference_order(got, reference)
    seconds = time.perf_counter() - t0
    n = len(heldout)
    failures: list[str] = []
    if len(got) != len(reference) or any(g.size != r.size for g, r in zip(got, reference, strict=False)):
        shapes = f"{[g.shape for g in got]} vs Keras {[r.shape for r in reference]}"
        max_abs = float("inf")
        failures.append(f"outputs differ in shape: {shapes}")
    else:
        max_abs = max(
            float(np.abs(g.reshape(n, -1) - r.reshape(n, -1)).max())
            for g, r in zip(got, reference, strict=True)
        )
    report: dict[str, Any] = {"samples": n, "data": data, "labelled": labelled, "max_abs_diff": max_abs}
    if n > 1 and all(is_constant(r, n) for r in reference):
        report["warning"] = constant_warning(n, labelled)
    checked = ["max abs diff"] if bar.max_abs_diff is not None else []
    if bar.max_abs_diff is not None and max_abs > bar.max_abs_diff:
        failures.append(f"max abs diff {max_abs:.3g} > {bar.max_abs_diff:g}")
    if is_classifier(card) and not failures:
        agree = class_probabilities(card, got[0]).argmax(1) == class_probabilities(card, reference[0]).argmax(
            1
        )
        report["top1_agreement"] = float(agree.mean())
    if labelled and not failures:
        keras_metrics = evaluate_outputs(card, list(reference), heldout.y)
        ours = evaluate_outputs(card, got, heldout.y)
        metric = next(iter(keras_metrics))
        delta = (ours[metric] - keras_metrics[metric]) * 100  # metrics are fractions: points
        report.update(
            {
                "metric": metric,
                metric: ours[metric],
                f"{metric}_keras": keras_metrics[metric],
                f"{metric}_delta_points": round(delta, 4) + 0.0,  # no "-0.0"
                "metrics": ours,
                "metrics_keras": keras_metrics,
            }
        )
        if "per_class" in ours and "per_class" in keras_metrics:
            report["per_class"] = side_by_side(ours["per_class"], keras_metrics["per_class"])
        task = get_task(card.task)
        if bar.max_metric_drop is not None:
            # the task's own floor where its metric is noisier than an accuracy (a read-back rate)
            allowed = bar.max_metric_drop
            if task.headline_bar is not None:
                allowed = max(allowed, task.headline_bar)
            checked.append(
                f"{metric} drop"
                + (f" (the task's bar: {allowed:g} points)" if allowed > bar.max_metric_drop else "")
            )
            worse = delta if metric in task.lower_is_better else -delta
            if worse > allowed:
                failures.append(f"{metric} drop {worse:.2f} points > {allowed:g}")
            for extra in task.quantized_bars:  # the task's own terms (a regression's MAE within 5%)
                ours_value, theirs = ours[extra.metric], keras_metrics[extra.metric]
                loss = ours_value - theirs if extra.metric in task.lower_is_better else theirs - ours_value
                limit = f"{extra.tolerance:.0%}" if extra.relative else f"{extra.tolerance:g}"
                checked.append(f"{extra.metric} within {limit} of Keras")
                if loss > extra.allowed(theirs) + 1e-12:
                    failures.append(
                        f"{extra.metric} {ours_value:.4g} vs Keras {theirs:.4g}: worse by more than {limit}"
                    )
    if not labelled and not failures and get_task(card.task).name == "detect":
        report.update(box_agreement(card, got, list(reference)))
    if not labelled and bar.max_metric_drop is not None:
        report["note"] = "no labelled data: the accuracy bar was not checked (pass --data to check it)"
    report.update(
        {
            "bar": bar.to_dict(),
            "checked": checked,
            "passed": not failures,
            "failures": failures,
            "seconds": round(seconds, 3),
            "io_quantization": io,
        }
    )
    return report


def is_constant(outputs: np.ndarray, n: int) -> bool:
    """Whether a model gave (nearly) the same output for each of its `n` inputs: an untrained
    network's softmax at 1/3 everywhere, a constant head. Files that ignored their inputs would
    agree with it as well as a correct one does."""
    rows = np.asarray(outputs, np.float64).reshape(n, -1)
    if not np.all(np.isfinite(rows)):
        return False
    scale = max(1.0, float(np.abs(rows).max()))
    return float(np.ptp(rows, axis=0).max()) <= 1e-6 * scale


def constant_warning(n: int, labelled: bool) -> str:
    """What a parity check on constant outputs is worth, in a sentence for the report."""
    fix = (
        "train the model first, or pass --data with real samples" if not labelled else "train the model first"
    )
    return (
        f"Keras gave the same outputs for all {n} inputs, so the file's agreement with it proves "
        f"nothing (a file that ignored its input would agree as well): {fix}"
    )


def box_agreement(
    card: ModelCard, got: Sequence[np.ndarray], reference: Sequence[np.ndarray]
) -> dict[str, Any]:
    """How well a detector's decoded boxes agree with Keras's on unlabelled images (at the model's
    size): each box matched to an unmatched Keras box of the same class at IoU >= 0.5, best first.
    `box_agreement` is the F1 of that matching (1.0: the same boxes), `box_iou` the matched boxes'
    mean IoU."""
    from edgekit.runtime.detection_formats import detection_format
    from edgekit.runtime.detection_metrics import _iou_matrix

    fmt = detection_format(card)
    settings = fmt.settings(card)
    ours, theirs = fmt.decode_batch(settings, got), fmt.decode_batch(settings, reference)
    matched, total, ious = 0, 0, []
    for a, b in zip(ours, theirs, strict=True):
        total += len(a.boxes) + len(b.boxes)
        if not len(a.boxes) or not len(b.boxes):
            continue
        iou = _iou_matrix(a.boxes, b.boxes)
        iou[a.classes[:, None] != b.classes[None, :]] = 0.0
        free = np.ones(len(b.boxes), bool)
        for i in np.argsort(-a.scores):
            j = int(np.argmax(np.where(free, iou[i], -1.0)))
            if free[j] and iou[i, j] >= 0.5:
                free[j] = False
                matched += 1
                ious.append(float(iou[i, j]))
    return {
        "box_agreement": 2 * matched / total if total else 1.0,
        "box_iou": float(np.mean(ious)) if ious else (1.0 if not total else 0.0),
        "boxes_keras": int(sum(len(b.boxes) for b in theirs)),
    }
