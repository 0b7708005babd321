"""`yolov8-seg`: Ultralytics instance segmentation. Two outputs: the head (1, 4+nc+nm, N) (centre xywh,
class scores, nm mask coefficients per box) and the prototypes (1, nm, H/4, W/4). Each kept box's
mask is its coefficients times the prototypes, upsampled to the input, thresholded at 0, cropped to
the box (Ultralytics' `process_mask`), then mapped onto the frame as its `scale_masks` does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import require
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import Detection, LetterboxInfo, unletterbox_boxes
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    FrameDecoder,
    output_shapes,
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

_CV2_INSTALL = "pip install 'opencv-python>=4.10,<5'"


def instance_masks(
    protos: np.ndarray, coefficients: np.ndarray, boxes: np.ndarray, input_size: tuple[int, int]
) -> np.ndarray:
    """(nm, mh, mw) prototypes, (K, nm) coefficients, (K, 4) boxes in input pixels -> (K, H, W) bool
    masks at the input size: upsampled before they are cut to the box, so a mask's edge is not
    smeared outside it (Ultralytics #24272)."""
    cv2 = require("cv2", _CV2_INSTALL)
    h, w = input_size
    k = len(coefficients)
    if not k:
        return np.zeros((0, h, w), dtype=bool)
    nm, mh, mw = protos.shape
    logits = (coefficients.astype(np.float32) @ protos.reshape(nm, -1)).reshape(k, mh, mw)
    # OpenCV resizes up to 512 channels at once; bilinear with half-pixel centres, as torch's is
    up = np.concatenate(
        [cv2.resize(np.ascontiguousarray(logits[i : i + 512].transpose(1, 2, 0)), (w, h),
                    interpolation=cv2.INTER_LINEAR).reshape(h, w, -1) for i in range(0, k, 512)],
        axis=2,
    ).transpose(2, 0, 1)  # fmt: skip
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    b = boxes.astype(np.float32)
    inside_x = (xs[None] >= b[:, 0:1]) & (xs[None] < b[:, 2:3])
    inside_y = (ys[None] >= b[:, 1:2]) & (ys[None] < b[:, 3:4])
    return (up > 0) & inside_y[:, :, None] & inside_x[:, None, :]


def masks_to_frame(masks: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """(K, H, W) bool masks at the input size -> (K, h, w) at the frame's: the letterboxed content cut
    out and resized bilinearly, kept above 0.5 (Ultralytics' `scale_masks`)."""
    cv2 = require("cv2", _CV2_INSTALL)
    src_h, src_w = info.src_shape
    if not len(masks):
        return np.zeros((0, src_h, src_w), dtype=bool)
    left, top = info.pad
    new_w, new_h = max(round(src_w * info.scale[0]), 1), max(round(src_h * info.scale[1]), 1)
    content = masks[:, top : top + new_h, left : left + new_w].transpose(1, 2, 0).astype(np.float32)
    out = np.concatenate(
        [cv2.resize(np.ascontiguousarray(content[:, :, i : i + 512]), (src_w, src_h),
                    interpolation=cv2.INTER_LINEAR).reshape(src_h, src_w, -1)
         for i in range(0, content.shape[2], 512)],
        axis=2,
    )  # fmt: skip
    return out.transpose(2, 0, 1) > 0.5


class YoloSegFormat(DetectionFormat):
    """`yolov8-seg`: boxes as YOLOv8's, each with its mask on `Detection.mask` at the frame's size."""

    name = "yolov8-seg"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> YoloSettings:
        return YoloSettings(**yolo_fields(card, options))

    def bind(self, settings: YoloSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        found = [i for i, o in enumerate(outputs) if len(o.shape) == 4]
        if len(found) != 1:
            raise ModelFileError(
                "a YOLO segmenter needs one (1, nm, H, W) prototype output; "
                f"the model has {output_shapes(outputs)}"
            )
        p_index, p_tensor = found[0], outputs[found[0]]
        nc = len(settings.labels)
        index = head_output(outputs, None, "a YOLO segmenter")
        head = [d for d in outputs[index].shape[1:] if d]
        # the prototypes' channel axis is the one that, with 4 + nc, makes the head's channels
        nm_first, nm_last = p_tensor.shape[1], p_tensor.shape[3]
        nchw = nm_first is not None and 4 + nc + nm_first in head
        nm = nm_first if nchw else nm_last
        if nm is None or 4 + nc + nm not in head:
            raise ModelFileError(
                f"a YOLO segmenter with {nc} classes needs a head of 4 + {nc} + nm channels and nm "
                f"prototypes; the model has {output_shapes(outputs)}"
            )
        channels, tensor = 4 + nc + nm, outputs[index]

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            rows = head_rows(from_tensor(raw[index], tensor), channels)
            boxes, scores, class_ids, kept = select_yolo(rows[:, :4], rows[:, 4 : 4 + nc], settings, info)
            protos = np.asarray(from_tensor(raw[p_index], p_tensor), dtype=np.float32)[0]
            if not nchw:
                protos = protos.transpose(2, 0, 1)
            size = info.dst_shape if info is not None else settings.input.size
            masks = instance_masks(protos, rows[kept, 4 + nc :], boxes, size)
            filled = masks.any(axis=(1, 2))  # Ultralytics drops a box whose mask is empty
            boxes, scores, class_ids, masks = boxes[filled], scores[filled], class_ids[filled], masks[filled]
            if info is not None:
                boxes, masks = unletterbox_boxes(boxes, info), masks_to_frame(masks, info)
            return [
                Detection(tuple(map(float, b)), float(s), settings.label(int(c)), int(c), mask=m)
                for b, s, c, m in zip(boxes, scores, class_ids, masks, strict=True)
            ]

        return decode


FORMATS.add(YoloSegFormat())
