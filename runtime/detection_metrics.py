"""mAP@0.5 for detectors, in numpy: VOC/COCO-style all-point interpolated average precision per
class, averaged over the classes that have ground truth; plus precision and recall at the card's
score threshold.

The detect task decodes a batch of raw outputs with its detection format
(`edgekit.runtime.detection_formats`) and scores the detections here against the dataset's YOLO
rows (object array of (k, 5) [class, cx, cy, w, h] normalised)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedError

MAP_CONF = 0.001  # mAP ranks every detection above this score (as COCO / Ultralytics val do)
MATCH_IOU = 0.5


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections in normalised corners: boxes (k, 4) x1, y1, x2, y2; scores; class ids."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def yolo_to_corners(rows: np.ndarray) -> np.ndarray:
    """(k, 5) [class, cx, cy, w, h] rows -> (k, 4) x1, y1, x2, y2 in the same (normalised) units."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    half = rows[:, 3:5] / 2
    return np.concatenate([rows[:, 1:3] - half, rows[:, 1:3] + half], axis=1)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((rb - lt).clip(0), axis=2)
    area_a = np.prod((a[:, 2:] - a[:, :2]).clip(0), axis=1)
    area_b = np.prod((b[:, 2:] - b[:, :2]).clip(0), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match(
    preds: Sequence[ImageDetections], truths: Sequence[np.ndarray], cls: int, iou: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores best first, true-positive flags, ground-truth count) for class `cls`: each detection,
    best score first, takes the unmatched ground-truth box it overlaps most if the IoU is >= `iou`."""
    scores, image_ids, boxes = [], [], []
    gt = []
    for i, (p, t) in enumerate(zip(preds, truths, strict=True)):
        keep = p.classes == cls
        scores.append(p.scores[keep])
        boxes.append(p.boxes[keep])
        image_ids.append(np.full(int(keep.sum()), i))
        t = np.asarray(t, dtype=np.float64).reshape(-1, 5)
        gt.append(yolo_to_corners(t[t[:, 0] == cls]))
    n_gt = sum(len(g) for g in gt)
    score = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-score, kind="stable")
    image_ids_all = np.concatenate(image_ids)[order] if image_ids else np.zeros(0, int)
    boxes_all = np.concatenate(boxes)[order] if boxes else np.zeros((0, 4))
    taken = [np.zeros(len(g), bool) for g in gt]
    tp = np.zeros(len(order), bool)
    for k, (img, box) in enumerate(zip(image_ids_all, boxes_all, strict=True)):
        g = gt[img]
        if not len(g):
            continue
        overlaps = _iou_matrix(box[None].astype(np.float64), g)[0]
        overlaps[taken[img]] = -1  # a box already found counts once; a second hit is a false positive
        j = int(overlaps.argmax())
        if overlaps[j] >= iou:
            taken[img][j] = True
            tp[k] = True
    return score[order], tp, n_gt


def average_precision(tp: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP of detections ranked best first (`tp` flags) against `n_gt` truths."""
    if n_gt == 0:
        return 0.0
    tps = np.cumsum(tp)
    recall = tps / n_gt
    precision = tps / np.arange(1, len(tp) + 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def mean_average_precision(
    preds: Sequence[ImageDetections], truths: Sequence[np.ndarray], num_classes: int, iou: float = MATCH_IOU
) -> tuple[float, dict[int, float]]:
    """(mAP, AP per class) over the classes with ground truth; 0.0 when no image has any object."""
    per_class = {}
    for c in range(num_classes):
        _, tp, n_gt = _match(preds, truths, c, iou)
        if n_gt:
            per_class[c] = average_precision(tp, n_gt)
    return (float(np.mean(list(per_class.values()))) if per_class else 0.0), per_class


def precision_recall(
    preds: Sequence[ImageDetections],
    truths: Sequence[np.ndarray],
    num_classes: int,
    conf: float,
    iou: float = MATCH_IOU,
) -> tuple[float, float]:
    """(precision, recall) of the detections scoring at least `conf`, matched as for mAP."""
    tp_total = n_pred = n_gt_total = 0
    for c in range(num_classes):
        score, tp, n_gt = _match(preds, truths, c, iou)
        kept = score >= conf
        tp_total += int(tp[kept].sum())
        n_pred += int(kept.sum())
        n_gt_total += n_gt
    precision = tp_total / n_pred if n_pred else (1.0 if n_gt_total == 0 else 0.0)
    recall = tp_total / n_gt_total if n_gt_total else 1.0
    return precision, recall


def detection_scores(
    preds: Sequence[ImageDetections], y: Any, num_classes: int, conf: float
) -> dict[str, float]:
    """mAP@0.5 of every image's detections (decoded above MAP_CONF), then precision and recall of
    those scoring at least `conf` (the card's threshold), against the YOLO rows `y`."""
    truths = list(y)
    if len(preds) != len(truths):
        raise UnsupportedError(f"{len(preds)} images of outputs but {len(truths)} of targets")
    map50, _ = mean_average_precision(preds, truths, num_classes)
    precision, recall = precision_recall(preds, truths, num_classes, conf)
    return {"map50": map50, "precision": precision, "recall": recall}
