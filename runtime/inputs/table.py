"""Tables: rows of named values (a CSV row, or a dataset's structured rows), made into the model's
input by the card's fitted `TableSpec` (`runtime/table_features.py`): scaling, fill values and
one-hot vocabularies fitted on the training part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.runtime.inputs import INPUT_KINDS, InputKind
from edgekit.runtime.table_features import TableSpec, rows_of, table_width


class TableInput(InputKind):
    name = "table"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """Rows -> (N, width) float32, exactly as on the device."""
        return TableSpec.from_dict(preprocess).encode(rows_of(raw))

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Rows around each column's fitted centre and spread, categories from the vocabulary."""
        return TableSpec.from_dict(preprocess).generate(n, seed)

    def blank(self, preprocess: Mapping[str, Any]) -> dict[str, Any]:
        """One row with every number at its centre and every category at its usual value."""
        return TableSpec.from_dict(preprocess).blank()

    def input_shape(self, preprocess: Mapping[str, Any], declared: tuple[int, ...]) -> tuple[int, ...]:
        """One value per number column and per category of each one-hot column, as fitted."""
        return (table_width(preprocess, declared[0]),)


INPUT_KINDS.add(TableInput())
