"""Classification of a table row: the card's columns scaled and one-hot encoded as in training,
top-k labels out (logistic regression, a tabular MLP)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.runtime.table_features import bound_table
from edgekit.runtime.tasks import TASKS
from edgekit.runtime.tasks.classify import Classifier, ClassifyImage


@TASKS.register()
class ClassifyTable(Classifier):
    name = "classify-table"
    accepts = "table"
    dataset = "table"

    # scores -> labels is the image classifier's, unchanged
    probabilities = ClassifyImage.probabilities
    postprocess = ClassifyImage.postprocess

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec, self._shape = bound_table(self.card, self.inputs)
        self._activation = self.card.postprocess.get("activation", "softmax")

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        row = self.spec.encode_row(raw, getattr(raw, "where", ""))
        return [self.feed(row.reshape(self._shape))]
