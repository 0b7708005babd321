"""The course's models for tables (001 §2.1-2.2, 002 §2): linear regression and logistic
regression as one Keras Dense layer on standardised features, and a small MLP for any CSV.

Their input is a row of a table, cleaned and scaled as the data's options say (`--missing`,
`--outliers`, `--scale`, ...): the scaling, fill values and one-hot vocabularies are fitted on the
training part and written into the card (`runtime/table_features.py`), and the model's width is the
fitted table's. A regression trains on the standardised target; the `regress` task turns its
outputs back into the target's units."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)
from edgekit.runtime.table_features import NUMBER, TableSpec, table_width

TABLE = MappingProxyType({"kind": "table"})
# the encoded widths of the shipped tables, as the recipes declare their inputs before data is read:
# grunfeld's value and capital; anes96's 8 numbers and 7 levels of education
GRUNFELD_WIDTH, ANES96_WIDTH = 2, 15


def fit_table(train_split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The table's scaling, fill values, vocabularies and target scaling, from the training rows."""
    return {**preprocess, **TableSpec.fit(train_split.x, train_split.y, preprocess).to_dict()}


def table_targets(split: Any, card: Mapping[str, Any]) -> Any:
    """Class indices as they are; a number standardised by the training part's mean and spread."""
    target = TableSpec.from_dict(card.preprocess).target
    if target is not None and target.type == NUMBER:
        return target.standardise(split.y).reshape(len(split.y), -1)
    return split.y


def width_of(default: int):
    """The build's `inputs`: the fitted table's width (`default` before the data is read)."""

    def data_args(preprocess: Mapping[str, Any]) -> dict[str, int]:
        return {"inputs": table_width(preprocess, default)}

    return data_args


def table_input(default_width: int) -> InputSpec:
    return InputSpec(
        "row", (default_width,), "NC", TABLE, fit_preprocess=fit_table, data_args=width_of(default_width)
    )


def build_linear_regression(num_classes: int = 1, inputs: int = GRUNFELD_WIDTH):
    """Dense(1) on the standardised features: y = w·x + b, fitted by gradient descent (one unit per
    value predicted: `num_classes` is the number of values)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [keras.Input((inputs,), name="row"), layers.Dense(num_classes, name="linear")],
        name="linear_regression",
    )


def build_logistic_regression(num_classes: int = 2, inputs: int = ANES96_WIDTH, l2: float = 0.0):
    """Dense(classes, softmax) on the standardised features: multinomial logistic regression (for two
    classes the same model as one sigmoid on the difference of the two logits); `l2` penalises the
    weights as scikit-learn's C does (l2 = 1 / (2 C n))."""
    import keras
    from keras import layers

    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential(
        [
            keras.Input((inputs,), name="row"),
            layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="logistic"),
        ],
        name="logistic_regression",
    )


def build_tabular_mlp(
    num_classes: int = 2,
    inputs: int = ANES96_WIDTH,
    hidden: int = 64,
    dropout: float = 0.1,
    output: str = "softmax",
):
    """Dense(hidden, relu) → Dropout → Dense(hidden/2, relu) → Dense(classes, softmax), or
    Dense(values) with no activation for a regression (`output="linear"`)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((inputs,), name="row"),
            layers.Dense(hidden, activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(max(1, hidden // 2), activation="relu"),
            layers.Dense(num_classes, activation=None if output == "linear" else output),
        ],
        name="tabular_mlp",
    )


REGRESSION_TRAINING = dict(loss="mse", keras_metrics=("mae",))


def is_regression(dataset: Any) -> bool:
    return dict(dataset.preprocess.get("target") or {}).get("type") == NUMBER


def regress_on_numbers(recipe: Recipe, dataset: Any) -> Recipe:
    """tabular-mlp on a table whose target is a number: the same layers with a linear output, the
    squared error as the loss and R² as the headline (the `regress` task)."""
    if not is_regression(dataset):
        return recipe
    return dataclasses.replace(
        recipe,
        task="regress",
        build=functools.partial(recipe.build, output="linear"),
        output=OutputSpec("values", "NC", "linear"),
        training=dataclasses.replace(recipe.training, **REGRESSION_TRAINING),
        evaluation=Evaluation(metric="r2", bar=0.0),
        adapt=None,
    )


def needs(kind: str, name: str):
    """A recipe for one kind of target: the other kind is one sentence."""

    def check(recipe: Recipe, dataset: Any) -> Recipe:
        from edgekit.errors import DataError

        numbers = is_regression(dataset)
        target = repr(dict(dataset.preprocess.get("target") or {}).get("name", "the target"))
        if kind == "number" and not numbers:
            raise DataError(
                f"{name} predicts a number, but the column {target} holds classes: use "
                "logistic-regression or tabular-mlp (or --classes no, if the classes are numbers)"
            )
        if kind == "category" and numbers:
            raise DataError(
                f"{name} predicts classes, but the column {target} holds numbers: use "
                "linear-regression or tabular-mlp (or --classes yes, if the numbers are classes)"
            )
        return recipe

    return check


RECIPES.add(
    Recipe(
        name="linear-regression",
        task="regress",
        description="the course's linear regression: Dense(1) on standardised features (Grunfeld investment)",
        build=build_linear_regression,
        input=table_input(GRUNFELD_WIDTH),
        data=DataSpec("grunfeld", targets=table_targets),
        output=OutputSpec("values", "NC", "linear"),
        # full-batch-like steps on a cosine schedule: the weights settle on the least-squares solution
        training=TrainingDefaults(epochs=40, batch_size=4, learning_rate=0.02, **REGRESSION_TRAINING),
        evaluation=Evaluation(metric="r2", bar=0.75),
        architecture=(("Dense", 10),),  # one unit per value predicted (the test builds with 10)
        adapt=needs("number", "linear-regression"),
    )
)

RECIPES.add(
    Recipe(
        name="logistic-regression",
        task="classify-table",
        description="the course's logistic regression: softmax over one Dense layer on standardised features",
        build=build_logistic_regression,
        input=table_input(ANES96_WIDTH),
        data=DataSpec("anes96", targets=table_targets),
        training=TrainingDefaults(epochs=30, batch_size=16, learning_rate=0.02),
        evaluation=Evaluation(bar=0.85),
        architecture=(("Dense", 10),),
        search=MappingProxyType({"l2": (0.0, 1e-4, 1e-3)}),
        adapt=needs("category", "logistic-regression"),
    )
)

RECIPES.add(
    Recipe(
        name="tabular-mlp",
        task="classify-table",
        description="an MLP for any CSV: Dense 64 / Dropout / Dense 32, classes or a number by the target",
        build=build_tabular_mlp,
        input=table_input(ANES96_WIDTH),
        data=DataSpec("anes96", targets=table_targets),
        training=TrainingDefaults(epochs=60, batch_size=32, early_stopping_patience=8),
        evaluation=Evaluation(bar=0.85),
        tiny=MappingProxyType({"hidden": 8}),
        architecture=(("Dense", 64), ("Dropout", None), ("Dense", 32), ("Dense", 10)),
        search=MappingProxyType({"hidden": (32, 64, 128), "dropout": (0.0, 0.1, 0.3)}),
        adapt=regress_on_numbers,
    )
)
