"""Text classification: the card's tokenizer turns a text into token ids, top-k labels come out."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.errors import DataError, UnsupportedError
from edgekit.runtime.tasks import TASKS
from edgekit.runtime.tasks.classify import Classifier, ClassifyImage
from edgekit.runtime.tensors import is_quantized
from edgekit.runtime.text import TextSpec


@TASKS.register()
class ClassifyText(Classifier):
    name = "classify-text"
    dataset = "text-csv"
    accepts = "text"

    # scores -> labels is the image classifier's, unchanged (softmax, logits, one sigmoid unit)
    probabilities = ClassifyImage.probabilities
    postprocess = ClassifyImage.postprocess

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = TextSpec.from_dict(self.card.preprocess)
        info = self.inputs[0]
        self._shape = tuple(1 if s is None else s for s in info.shape)
        if int(np.prod(self._shape)) != self.spec.maxlen:
            raise DataError(
                f"the card's tokenizer makes {self.spec.maxlen} token ids but the model input "
                f"{info.shape} takes {int(np.prod(self._shape))}"
            )
        if is_quantized(info) and info.dtype.itemsize < 4:
            # an 8-bit input holds 256 values: token ids would be scaled and clipped into nonsense
            raise UnsupportedError(
                f"this text model's input is quantized to {info.dtype.name}, which cannot hold token ids "
                f"up to {self.spec.tokenizer.vocab_size - 1}: export it with an int32 (or float) input"
            )
        self._dtype = info.dtype  # int32 ids; float32 where an export cast them (exact below 2**24)
        self._activation = self.card.postprocess.get("activation", "softmax")

    def preprocess(self, raw: str) -> list[np.ndarray]:
        # the same TextSpec.encode that training ran on the whole dataset, on a batch of one
        ids = self.spec.encode([raw])
        return [ids.reshape(self._shape).astype(self._dtype, copy=False)]
