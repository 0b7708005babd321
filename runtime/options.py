"""What a run may override of a card's defaults (top-k, detection thresholds, the classes kept): read
by the tasks and by the detection formats they decode with, so it lives below both."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskOptions:
    """Run-time choices that override the card's defaults; None keeps the card's value."""

    top_k: int = 5
    conf: float | None = None  # detection score threshold
    iou: float | None = None  # detection NMS IoU threshold
    classes: tuple[int, ...] | None = None  # keep only detections of these class ids
    seed: int | None = None  # a generator's noise: mixed into each request's own seed (None: its own)
