"""Image classification: resize and normalise as the card says, top-k labels out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.metrics import classifier_metrics
from edgekit.runtime.preprocess import ImageSpec, light_border, normalize, prepare_image
from edgekit.runtime.tasks import TASKS, Task


class Classification(NamedTuple):
    """One class of a result. A named tuple, immutable as a frozen dataclass and a fifth of its cost
    to make: a classifier makes top-k of them per frame."""

    index: int
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "label": self.label, "score": round(self.score, 6)}


def top_k(p: np.ndarray, k: int, labels: Sequence[str]) -> list[Classification]:
    """The `k` highest of the scores `p`, best first (ties in class order), labelled (a class past the
    labels by its number)."""
    k = min(k, p.size)
    n = len(labels)
    if p.size <= 64:  # a few scores: sorted as Python numbers, cheaper than numpy's calls on them
        values = p.tolist()
        top = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]
        return [Classification(i, labels[i] if i < n else str(i), values[i]) for i in top]
    top = np.argpartition(-p, k - 1)[:k]
    top = top[np.argsort(-p[top], kind="stable")]
    return [
        Classification(i, labels[i] if i < n else str(i), s) for i, s in zip(top.tolist(), p[top].tolist())
    ]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Classifier(Task):
    """A task that gives one class per input (image, text or audio): top-1 accuracy is its headline
    metric (the first key, which bench's column and the export bar read), then precision, recall and
    F1, macro and weighted, and `per_class`."""

    classifies = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # read per call by the image classifier's postprocess, which text and table classifiers share
        self._k, self._labels = self.options.top_k, self.card.labels

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        return classifier_metrics(card, outputs, y)


@TASKS.register()
class ClassifyImage(Classifier):
    name = "classify-image"
    accepts = "image"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = ImageSpec.from_dict(self.card.preprocess)
        info = self.inputs[0]
        # the model may take the image flat (an MLP on 784 values): reshape to its input shape
        self._shape = tuple(1 if s is None else s for s in info.shape)
        expected = int(np.prod(self._shape))
        got = self.spec.size[0] * self.spec.size[1] * self.spec.channels
        if expected != got:
            raise DataError(
                f"the card's preprocessing makes {got} values but the model input {info.shape} "
                f"takes {expected}"
            )
        self._activation = self.card.postprocess.get("activation", "softmax")
        # every uint8 pixel value -> the model's input value, computed once: one table lookup per
        # frame instead of a multiply, a divide, a round and a clip (the same numbers, bit for bit)
        self._lut = self.feed(normalize(np.arange(256, dtype=np.uint8), self.spec))
        # frames that need nothing but the table: uint8 at the model's size and channels (a
        # grayscale model takes H x W or H x W x 1); an MNIST-style card's light-ground frames (paper)
        # still go the whole way, to be inverted and cropped
        h, w = self.spec.size
        self._direct = {(h, w), (h, w, 1)} if self.spec.channels == 1 else {(h, w, 3)}
        # an MNIST-style card's frame goes the whole way unless its border is mostly dark: fewer than
        # half of the border pixels light (`light_ground` decides the rest, ties included, there)
        self._border = 2 * (h + w) if self.spec.mnist_like and self.spec.polarity else 0
        self._rgb = self.spec.channels == 3

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """A decoded image -> uint8 pixels at the model's size and colour."""
        return prepare_image(image, self.spec)

    def preprocess(self, raw: np.ndarray) -> list[np.ndarray]:
        # inline, with as few calls as can be: right after an inference has evicted the caches,
        # each call here costs several times what it does in a loop of its own
        if (
            raw.dtype == np.uint8
            and raw.shape in self._direct
            and (not self._border or 2 * light_border(raw) < self._border)
        ):
            # what prepare_image gives for it (BGR to RGB aside), without its copies and checks
            return [self._lut[raw[..., ::-1] if self._rgb else raw].reshape(self._shape)]
        px = self.pixels(raw)
        if px.dtype == np.uint8:
            return [self._lut[px].reshape(self._shape)]
        return [self.feed(normalize(px, self.spec).reshape(self._shape))]  # not 8-bit: compute it

    def probabilities(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        s = np.asarray(self._read[0](outputs[0]), dtype=np.float32).reshape(-1)  # `scores`, one call less
        if self._activation == "logits":
            return softmax(s)
        if self._activation == "sigmoid" and s.size == 1:  # one unit: P(class 1)
            return np.array([1.0 - s[0], s[0]], dtype=np.float32)
        return s

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Classification]:
        return top_k(self.probabilities(outputs), self._k, self._labels)

    def draw(self, frame: np.ndarray, results: Sequence[Classification]) -> np.ndarray:
        """The top three labels with their scores, each on a box that reads on any picture."""
        from edgekit.runtime.drawing import caption, colour_frame

        frame = colour_frame(frame)
        y = 4
        for r in results[:3]:
            y += caption(frame, f"{r.label} {r.score:.2f}", (4, y)) + 2
        return frame
