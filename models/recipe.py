"""A recipe is data plus one function: how to build a documented model, what data it trains on,
how its input is prepared (this goes into the card), and the bar its tests hold it to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgekit.registry import Registry


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str
    description: str
    build: Callable[..., Any]  # (**hparams) -> keras.Model, imports Keras when called
    dataset: str
    preprocess: Mapping[str, Any]  # the task's preprocessing spec, written into the card
    input_name: str
    input_shape: tuple[int, ...]  # without the batch dimension
    input_layout: str
    hparams: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # or "constant", or "exponential" (decay_rate every decay_epochs)
    decay_rate: float = 0.9  # "exponential" only: the learning rate is multiplied by this ...
    decay_epochs: float = 1.0  # ... every this many epochs (smoothly, not in steps)
    # stop when the loss on a validation slice of the training data has not improved for this many
    # epochs, and keep the best weights; None: train for all the epochs
    early_stopping_patience: int | None = None
    validation_fraction: float = 0.1  # the slice of the training data early stopping watches
    # (uint8 pixels, rng) -> one augmented copy, added to the training set; None: no augmentation
    augment: Callable[[Any, Any], Any] | None = None
    # a Keras loss name, or a zero-argument function returning a loss object (called after Keras is
    # imported, so recipe modules stay importable without TensorFlow)
    loss: str | Callable[[], Any] = "sparse_categorical_crossentropy"
    # the held-out metric reported and held to `bar`: a Keras metric name for classifiers, or the
    # headline key of `edgekit.runtime.metrics.METRICS[task]` (e.g. "iou", "map50")
    metric: str = "accuracy"
    # metrics Keras tracks during fit; None: [metric] (right for classifiers)
    keras_metrics: tuple[Any, ...] | None = None
    output_activation: str = "softmax"
    output_name: str = "scores"
    output_layout: str = "NC"
    # extra card postprocess settings (detection decoding, mask threshold), beside "activation"
    postprocess: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # (training split, the recipe's preprocess, the hparams) -> the preprocess to train with and write
    # into the card: where it is fitted on data (a tokenizer's vocabulary) or follows an hparam (an
    # input size). None: as declared.
    fit_preprocess: Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    # (split, card-like mapping {"preprocess", "postprocess", "labels"}) -> the training targets for
    # Keras; None: split.y as it is (class indices)
    targets: Callable[[Any, Mapping[str, Any]], Any] | None = None
    bar: float = 0.0  # the held-out metric a full training run must reach (slow tests)
    architecture: tuple[tuple[str, Any], ...] = ()  # (layer class, units/filters) as documented
    # hparam overrides that make a tiny model of the same shape, for fast tests (fewer filters,
    # a smaller input); the parametrised tests build, train and export with these
    tiny: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


RECIPES: Registry[Recipe] = Registry("recipe", package="edgekit.models.recipes")


def get_recipe(name: str) -> Recipe:
    return RECIPES.get(name)


def recipe_names() -> list[str]:
    return RECIPES.names()
