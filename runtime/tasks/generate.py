"""Generating images of a wanted class with a conditional generator (latent noise + the class ->
an image): `edgekit run cgan_int8.tflite --source "digits:0123456789" --save grid.png --seed 7`.

Each request gives one `Generated` image; `--save IMAGE` tiles a run's images into one grid (the
`digits:` source asks for that), `--json` gives each one's class and seed.

What matters of a generator is whether its images are of the class asked for, so its metric is
the read-back rate (the classifier-based evaluation of TF-GAN's MNIST example): the share of
generated images that an independent MNIST classifier, the project's own `mnist-cnn` trained on
the shipped digits (`runtime/assets/mnist_reader.tflite`, made by `bench/make_mnist_reader.py`),
reads as the requested digit. `evaluate`, `bench` and export validation read it; a quantized file
may lose at most 3 points of it: over a thousand requests the rate moves by about that between two
noise seeds of one generator, so a tighter bar would fail files that are as good."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import UnsupportedError
from edgekit.runtime.inputs.labels import LabelsSpec, request_of
from edgekit.runtime.tasks import TASKS, Task, TaskOptions, get_task

READER = Path(__file__).resolve().parents[1] / "assets" / "mnist_reader.tflite"


@dataclass(frozen=True)
class Generated:
    """One generated image (uint8, height x width x channels) of the class asked for."""

    index: int
    label: str
    seed: Any
    image: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "generated",
            "index": self.index,
            "label": self.label,
            "seed": self.seed,
            "shape": list(self.image.shape),
        }

    def __str__(self) -> str:
        h, w = self.image.shape[:2]
        return f"generated {self.label} ({w}x{h}, seed {self.seed})"


def to_pixels(values: np.ndarray, activation: str) -> np.ndarray:
    """Generator outputs -> uint8 pixels: tanh's -1..1 or sigmoid's 0..1 onto 0..255."""
    v = np.asarray(values, dtype=np.float32)
    if activation == "tanh":
        v = (v + 1.0) / 2.0
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def reader() -> tuple[Any, Task]:
    """The MNIST classifier that reads generated digits back, opened once per process: its session
    and its own task (a classifier's preprocessing and labels), the layer below `Predictor`, which
    imports the tasks: a task that used it would make the two import each other."""
    from edgekit.runtime.backends import open_model

    session = open_model(READER, threads=1)
    card = session.card
    return session, get_task(card.task)(card, session.inputs, session.outputs, TaskOptions())


def read_back(images: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """(the reader's class for each uint8 image, the reader's labels)."""
    from edgekit.runtime.tensors import from_tensor

    session, task = reader()
    info = session.outputs[0]
    got = [int(np.argmax(from_tensor(session.run(task.preprocess(image))[0], info))) for image in images]
    return np.asarray(got, dtype=np.int64), tuple(task.card.labels)


def readback_scores(card: Any, outputs: np.ndarray, y: Any) -> dict[str, float]:
    """The read-back rate (the headline: a fraction, higher is better) and the worst class's rate."""
    labels = tuple(card.labels)
    images = to_pixels(outputs, card.postprocess.get("activation", "tanh"))
    got, names = read_back(images)
    if not set(labels) <= set(names):
        raise UnsupportedError(
            f"the read-back rate needs a reader of the generator's classes; the reader knows {', '.join(names)}"
        )
    wanted = np.array([names.index(labels[int(c)]) for c in np.asarray(y).reshape(-1)])
    right = got == wanted
    per_class = [right[wanted == k].mean() for k in np.unique(wanted)]
    return {
        "readback": float(right.mean()) if right.size else 0.0,
        "readback_worst_class": float(min(per_class)) if per_class else 0.0,
    }


@TASKS.register()
class Generate(Task):
    name = "generate"
    accepts = "labels"
    headline_bar = 3.0

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        return readback_scores(card, outputs[0], y)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = LabelsSpec.from_dict(self.card.preprocess)
        info = self.inputs[0]
        self._shape = tuple(1 if s is None else s for s in info.shape)
        self._activation = self.card.postprocess.get("activation", "tanh")
        self._request = request_of(0)
        self._seed: Any = 0

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        request = self._request = request_of(raw)
        # --seed: every request's noise from (the run's seed, its own), so runs repeat by seed
        run = self.options.seed
        self._seed = request.seed if run is None else [int(run), request.seed]
        return [self.feed(self.spec.vector(request, self._seed).reshape(self._shape))]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Generated]:
        image = to_pixels(self.output(outputs)[0], self._activation)
        label = self._request.label
        name = self.card.labels[label] if label < len(self.card.labels) else str(label)
        return [Generated(label, name, self._seed, image)]

    def draw(self, frame: np.ndarray, results: Sequence[Any]) -> np.ndarray:
        """The generated image scaled onto the frame (its tile in a grid)."""
        import cv2

        for result in results:
            image = result.image
            h, w = frame.shape[:2]
            tile = cv2.resize(image, (w, h), interpolation=cv2.INTER_NEAREST)
            if tile.ndim == 2:
                tile = tile[..., None]
            if frame.ndim == 3 and frame.shape[2] == 3 and tile.shape[2] == 1:
                tile = np.repeat(tile, 3, axis=2)
            frame[...] = tile.reshape(frame.shape)
        return frame
