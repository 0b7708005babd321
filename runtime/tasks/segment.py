"""Binary segmentation: a probability mask out of the model, a `Mask` at the frame's own size back,
drawn as a semi-transparent overlay. Also the task's metrics (IoU and Dice), in numpy.

The card says how: `preprocess` is an image spec (the same `features` function training used),
`postprocess["threshold"]` (default 0.5) turns probabilities into the mask (`--conf` overrides it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError, ModelFileError
from edgekit.runtime.features import features
from edgekit.runtime.preprocess import ImageSpec, image_input_layout
from edgekit.runtime.tasks import TASKS, Task

OVERLAY_BGR = (0, 200, 255)  # amber: stands out on skin, grass and sky alike
OVERLAY_ALPHA = 0.45


@dataclass(frozen=True, eq=False)  # eq=False: the arrays have no single truth value
class Mask:
    """The foreground of one frame, at the frame's own size.

    `mask` is bool (H, W); `box` is the foreground's bounding box (x1, y1, x2, y2) in pixels, x2 and
    y2 exclusive, None when nothing is foreground; `probabilities` is the model's map at its own
    input size (float32)."""

    mask: np.ndarray
    fraction: float
    box: tuple[int, int, int, int] | None
    label: str = "foreground"
    probabilities: np.ndarray | None = None

    @classmethod
    def from_mask(cls, mask: np.ndarray, label: str = "foreground", probabilities: Any = None) -> Mask:
        """A Mask from a binary (H, W) array: its fraction and bounding box computed here."""
        mask = np.asarray(mask, dtype=bool)
        return cls(mask, float(mask.mean()) if mask.size else 0.0, bounding_box(mask), label, probabilities)

    @property
    def area(self) -> int:
        """Foreground pixels."""
        return int(np.count_nonzero(self.mask))

    def rle(self) -> dict[str, Any]:
        """COCO-style uncompressed run-length encoding: column-major runs, starting with background."""
        flat = self.mask.ravel(order="F").astype(np.int8)
        changes = np.flatnonzero(np.diff(flat)) + 1
        bounds = np.concatenate([[0], changes, [flat.size]])
        counts = np.diff(bounds).tolist()
        if flat.size and flat[0]:  # the counts always start with a (possibly empty) background run
            counts = [0, *counts]
        return {"size": [int(self.mask.shape[0]), int(self.mask.shape[1])], "counts": counts}

    def to_dict(self, rle: bool = False) -> dict[str, Any]:
        """A compact JSON-ready summary (never the full array); `rle=True` adds the mask as RLE."""
        d: dict[str, Any] = {
            "label": self.label,
            "fraction": round(self.fraction, 6),
            "area": self.area,
            "box": None if self.box is None else list(self.box),
            "size": [int(self.mask.shape[0]), int(self.mask.shape[1])],
        }
        if rle:
            d["rle"] = self.rle()
        return d

    def __str__(self) -> str:
        where = "" if self.box is None else f" in [{', '.join(str(v) for v in self.box)}]"
        return f"{self.label} {self.fraction:.1%}{where}"


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) of the nonzero pixels of a 2-D mask, x2/y2 exclusive; None if there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def foreground_probability(output: np.ndarray, activation: str = "sigmoid") -> np.ndarray:
    """A batch of raw mask outputs (N, H, W, 1), (N, H, W) or (N, H, W, C) -> P(foreground) (N, H, W)."""
    p = np.asarray(output, dtype=np.float32)
    if p.ndim == 4 and p.shape[-1] == 1:
        p = p[..., 0]
    elif p.ndim == 4:  # one channel per class (softmax): foreground is anything but class 0
        return 1.0 - p[..., 0]
    if p.ndim != 3:
        raise DataError(f"a segmentation output is (N, H, W, 1) or (N, H, W), got shape {p.shape}")
    if activation == "logits":
        p = 1.0 / (1.0 + np.exp(-p))
    return p


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Masks (N, H, W) -> (N, h, w) by nearest neighbour (labels must not blend)."""
    masks = np.asarray(masks)
    if masks.shape[1:3] == tuple(size):
        return masks
    import cv2

    h, w = size
    return np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks.astype(np.uint8)])


def iou_dice(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Foreground IoU and Dice of two binary mask batches, pooled over every pixel of the batch.

    Pooled (not averaged per image) so an image with no foreground neither counts as perfect nor as
    zero. Both empty: 1.0, as the two agree everywhere."""
    p, a = np.asarray(predicted, dtype=bool), np.asarray(actual, dtype=bool)
    if p.shape != a.shape:
        raise DataError(f"predicted masks {p.shape} and true masks {a.shape} differ in shape")
    inter = int(np.count_nonzero(p & a))
    union = int(np.count_nonzero(p | a))
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(a))
    if total == 0:
        return 1.0, 1.0
    return inter / union, 2 * inter / total


def segment_metrics(card: Any, outputs: Sequence[np.ndarray], y: Any) -> dict[str, float]:
    """IoU (the headline) and Dice of the thresholded output masks against the true masks `y`
    (N, H, W), which are resized (nearest) to the output's size where they differ."""
    pp = card.postprocess
    prob = foreground_probability(outputs[0], pp.get("activation", "sigmoid"))
    truth = resize_masks(np.asarray(y), prob.shape[1:3]) > 0
    iou, dice = iou_dice(prob > float(pp.get("threshold", 0.5)), truth)
    return {"iou": iou, "dice": dice}


@TASKS.register()
class Segment(Task):
    """One `Mask` per frame. `preprocess` keeps the frame's size for the following `postprocess`:
    one frame at a time per task, as the Predictor runs it."""

    name = "segment"
    dataset = "masks"
    accepts = "image"

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        return segment_metrics(card, outputs, y)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = ImageSpec.from_dict(self.card.preprocess)
        info = self.inputs[0]
        self._nchw = image_input_layout(tuple(info.shape), self.spec, "a segmentation model")
        pp = self.card.postprocess
        try:
            conf = self.options.conf
            self.threshold = float(conf if conf is not None else pp.get("threshold", 0.5))
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess.threshold is not a number: {e}") from None
        self._activation = str(pp.get("activation", "sigmoid"))
        labels = self.card.labels
        self.label = labels[-1] if labels else "foreground"  # (background, foreground)
        self.frame_size: tuple[int, int] | None = None

    def preprocess(self, raw: np.ndarray) -> list[np.ndarray]:
        if not isinstance(raw, np.ndarray) or raw.ndim not in (2, 3):
            raise DataError(f"expected an image, got {type(raw).__name__}")
        self.frame_size = (int(raw.shape[0]), int(raw.shape[1]))
        x = features(self.card.preprocess, [raw])  # the function training used, on a batch of one
        return [self.feed(x.transpose(0, 3, 1, 2) if self._nchw else x)]

    def probabilities(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """P(foreground) at the model's size (h, w), float32."""
        out = self.scores(outputs)
        if self._nchw and out.ndim == 4 and out.shape[1] == 1:
            out = out.transpose(0, 2, 3, 1)
        return foreground_probability(out, self._activation)[0]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Mask]:
        import cv2

        prob = self.probabilities(outputs)
        h, w = self.frame_size or prob.shape
        # resize the probabilities, then threshold: smooth edges, where resizing the 0/1 mask would
        # give the model's pixel grid blown up
        full = prob if prob.shape == (h, w) else cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        return [Mask.from_mask(full > self.threshold, self.label, prob)]

    def draw(self, frame: np.ndarray, results: Sequence[Mask]) -> np.ndarray:
        return draw_masks(frame, results)


def draw_masks(frame: np.ndarray, results: Sequence[Mask]) -> np.ndarray:
    """The masks as a coloured, semi-transparent overlay with an outline, and the fraction written."""
    import cv2

    from edgekit.runtime.drawing import caption, colour_frame

    frame = colour_frame(frame)
    h, w = frame.shape[:2]
    y = 4
    for m in results:
        mask = m.mask
        if mask.shape != (h, w):
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        if mask.any():
            colour = np.array(OVERLAY_BGR, dtype=np.float32)
            blended = frame[mask].astype(np.float32) * (1 - OVERLAY_ALPHA) + colour * OVERLAY_ALPHA
            frame[mask] = np.round(blended).astype(np.uint8)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(frame, contours, -1, OVERLAY_BGR, 1, cv2.LINE_AA)
        y += caption(frame, f"{m.label} {m.fraction:.1%}", (4, y), fill=OVERLAY_BGR) + 2
    return frame
