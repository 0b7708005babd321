"""`yolov8-pose`: Ultralytics pose. One output (1, 4+nc+K*D, N): centre xywh, class scores, then K
keypoints of D values each (x, y in input pixels, and a visibility already through a sigmoid when D
is 3). The card's `postprocess["kpt_shape"]` is [K, D] (the file's own metadata; COCO's [17, 3])."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import Detection, LetterboxInfo, unletterbox_boxes, unletterbox_points
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    FrameDecoder,
)
from edgekit.runtime.detection_formats.yolo import (
    YoloSettings,
    head_output,
    head_rows,
    select_yolo,
    yolo_fields,
)
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor


@dataclass(frozen=True)
class PoseSettings(YoloSettings):
    """A pose card: keypoints per box and values per keypoint."""

    kpt_shape: tuple[int, int] = (17, 3)


class YoloPoseFormat(DetectionFormat):
    """`yolov8-pose`: boxes as YOLOv8's with keypoints (and their visibility) on each detection."""

    name = "yolov8-pose"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> PoseSettings:
        pp = card.postprocess
        try:
            k, d = (int(v) for v in pp.get("kpt_shape", (17, 3)))
            if k < 1 or d not in (2, 3):
                raise ValueError
        except (TypeError, ValueError):
            raise ModelFileError(
                f"model card field postprocess.kpt_shape is {pp.get('kpt_shape')!r}, not [keypoints, 2 or 3]"
            ) from None
        return PoseSettings(
            **yolo_fields(card, options),
            kpt_shape=(k, d),
        )

    def bind(self, settings: PoseSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        nc, (k, d) = len(settings.labels), settings.kpt_shape
        channels = 4 + nc + k * d
        index = head_output(outputs, channels, f"a YOLO pose model with {nc} classes and {k}x{d} keypoints")
        tensor = outputs[index]

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            rows = head_rows(from_tensor(raw[index], tensor), channels)
            boxes, scores, class_ids, kept = select_yolo(rows[:, :4], rows[:, 4 : 4 + nc], settings, info)
            kpts = rows[kept, 4 + nc :].reshape(-1, k, d)
            xy = kpts[..., :2].astype(np.float64)
            if settings.normalized and info is not None:
                xy = xy * info.dst_shape[::-1]
            if info is not None:
                boxes = unletterbox_boxes(boxes, info)
                h, w = info.src_shape
                xy = unletterbox_points(xy, info)
                xy[..., 0] = xy[..., 0].clip(0, w)  # as Ultralytics' scale_coords clips them
                xy[..., 1] = xy[..., 1].clip(0, h)
            vis = kpts[..., 2] if d == 3 else np.ones(kpts.shape[:2], dtype=np.float32)
            return [
                Detection(
                    tuple(map(float, b)),
                    float(s),
                    settings.label(int(c)),
                    int(c),
                    keypoints=tuple(map(tuple, p.tolist())),
                    keypoint_scores=tuple(v.tolist()),
                )  # fmt: skip
                for b, s, c, p, v in zip(boxes, scores, class_ids, xy, vis, strict=True)
            ]

        return decode


FORMATS.add(YoloPoseFormat())
