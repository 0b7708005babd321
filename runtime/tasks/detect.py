"""Object detection: letterbox the frame, run the model, decode boxes back onto the original frame.

How outputs become boxes is the detection format's (`edgekit.runtime.detection_formats`, chosen by
the card's `postprocess["format"]`): its settings are parsed and its decoder bound to the model's
outputs once, in `__init__`, so a frame costs only the decoding. The same format decodes batches
for the task's metrics (mAP@0.5)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.detection import Detection, LetterboxInfo, draw_detections, letterbox, letterbox_info
from edgekit.runtime.detection_formats import detection_format
from edgekit.runtime.preprocess import ImageSpec, image_input_layout, normalize, prepare_image
from edgekit.runtime.tasks import TASKS, Task


@TASKS.register()
class Detect(Task):
    """Boxes (and keypoints) in pixels of the original frame.

    `preprocess` keeps the frame's LetterboxInfo for the following `postprocess`: one frame at a
    time per task, as the Predictor runs it.
    """

    name = "detect"
    accepts = "image"
    dataset = "yolo"

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        """mAP@0.5, then precision and recall at the card's score threshold, from a batch of raw
        outputs. Letterboxed boxes go back onto each item (its size) before they are matched."""
        # here, not at the top: `edgekit run` on a detector never scores it (a dataclass and a
        # module less at every start)
        from edgekit.runtime.detection_metrics import MAP_CONF, detection_scores

        fmt = detection_format(card)
        settings = fmt.settings(card)
        sizes = None
        if items is not None and settings.input.resize == "letterbox":
            sizes = [tuple(np.shape(item)[:2]) for item in items]
        preds = fmt.decode_batch(dataclasses.replace(settings, conf=MAP_CONF), outputs, sizes)
        return detection_scores(preds, y, len(card.labels), settings.conf)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = ImageSpec.from_dict(self.card.preprocess)
        fmt = detection_format(self.card)
        self.settings = fmt.settings(self.card, self.options)
        self.decode = fmt.bind(self.settings, self.outputs)
        self._nchw = image_input_layout(tuple(self.inputs[0].shape), self.spec, "a detector")
        self._classes = None if self.options.classes is None else np.array(self.options.classes)
        self.letterbox_info: LetterboxInfo | None = None

    def preprocess(self, raw: np.ndarray) -> list[np.ndarray]:
        if not isinstance(raw, np.ndarray) or raw.ndim not in (2, 3):
            raise DataError(f"expected an image, got {type(raw).__name__}")
        if self.spec.resize == "letterbox":
            boxed, self.letterbox_info = letterbox(raw, self.spec.size, color=self.spec.pad)
        else:
            # stretched: prepare_image resizes as training's `features` did (INTER_AREA when shrinking),
            # so a trained detector sees the same pixels here; only the scale maps boxes back
            boxed, self.letterbox_info = raw, letterbox_info(raw.shape[:2], self.spec.size, keep_aspect=False)
        x = normalize(prepare_image(boxed, self.spec), self.spec)
        return [self.feed((x.transpose(2, 0, 1) if self._nchw else x)[None])]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Detection]:
        detections = self.decode(outputs, self.letterbox_info)
        if self._classes is not None:
            detections = [d for d in detections if d.class_id in self._classes]
        return detections

    def draw(self, frame: np.ndarray, results: Sequence[Detection]) -> np.ndarray:
        from edgekit.runtime.drawing import colour_frame

        return draw_detections(colour_frame(frame), results)
