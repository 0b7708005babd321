"""Raw inputs -> model inputs, as a batch, by the card's `preprocess["kind"]`.

Training, export validation, `evaluate` and the runtime tasks all call `features`, so a model sees
the same numbers everywhere. Kinds: "image" (here), "text" and "audio" (registered by
`runtime/text.py` and `runtime/audio.py`). numpy only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.registry import Registry
from edgekit.runtime.preprocess import ImageSpec, normalize, prepare_image

# (the card's preprocess mapping, a batch of raw items) -> float32 array, one row per item
FeatureFn = Callable[[Mapping[str, Any], Sequence[Any]], np.ndarray]
FEATURES: Registry[FeatureFn] = Registry(
    "preprocessing kind", modules=("edgekit.runtime.audio", "edgekit.runtime.text")
)


@FEATURES.register("image")
def image_features(preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
    """Decoded images (OpenCV's BGR order, as datasets and sources hold them) -> normalised float32,
    through the runtime's own `prepare_image` (resize, colour, RGB order)."""
    spec = ImageSpec.from_dict(dict(preprocess))
    if isinstance(raw, np.ndarray) and raw.ndim == 4 and raw.shape[1:] == (*spec.size, spec.channels):
        # already at the model's size: the same result as prepare_image, without a loop
        return normalize(raw[..., ::-1] if spec.channels == 3 else raw, spec)
    return normalize(np.stack([prepare_image(np.asarray(item), spec) for item in raw]), spec)



def features(
    preprocess: Mapping[str, Any], raw: Sequence[Any], input_shape: tuple[int | None, ...] | None = None
) -> np.ndarray:
    """A batch of raw items -> the model's input batch (float32, or integer ids), reshaped to
    `input_shape` (no batch dimension) if given."""
    x = FEATURES.get(str(preprocess.get("kind", "image")))(preprocess, raw)
    if input_shape is not None:
        x = x.reshape((len(x), *input_shape))
    x = np.asarray(x)
    # integer features (token ids) stay integer; floats are the model's float32
    return x if x.dtype.kind in "iu" else x.astype(np.float32, copy=False)
