"""Images: decoded pixels (OpenCV's BGR order, as datasets and sources hold them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.runtime.inputs import INPUT_KINDS, InputKind
from edgekit.runtime.preprocess import ImageSpec, normalize, prepare_image


class ImageInput(InputKind):
    name = "image"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """Decoded images -> normalised float32, through the runtime's own `prepare_image` (resize,
        colour, RGB order)."""
        spec = ImageSpec.from_dict(dict(preprocess))
        model_size = (*spec.size, spec.channels)
        same_size = isinstance(raw, np.ndarray) and raw.ndim == 4 and raw.shape[1:] == model_size
        if same_size and not spec.mnist_like:
            # already at the model's size: the same result as prepare_image, without a loop
            return normalize(raw[..., ::-1] if spec.channels == 3 else raw, spec)
        return normalize(np.stack([prepare_image(np.asarray(item), spec) for item in raw]), spec)

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Uniform random pixels at the card's size: every value the input can take, none it cannot."""
        spec = ImageSpec.from_dict(dict(preprocess))
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (n, *spec.size, spec.channels), dtype=np.uint8)

    def blank(self, preprocess: Mapping[str, Any]) -> np.ndarray:
        """A black frame at the model's size, in three channels as a camera gives it."""
        h, w = ImageSpec.from_dict(dict(preprocess)).size
        return np.zeros((h, w, 3), dtype=np.uint8)


INPUT_KINDS.add(ImageInput())
