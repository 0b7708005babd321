"""A recipe is data plus one function: how to build a documented model, what data it trains on,
how its input is prepared (this goes into the card), and the bar its tests hold it to.

The fields are grouped by who reads them: `input` and `output` become the card's tensor specs and
pre/postprocessing, `data` is what training feeds the model, `training` the defaults a run may
override, `evaluation` the held-out metric and its bar."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from edgekit.registry import Registry


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class InputSpec:
    """The model's input as the card describes it, and how raw items are prepared for it."""

    name: str
    shape: tuple[int, ...]  # without the batch dimension
    layout: str
    preprocess: Mapping[str, Any]  # the task's preprocessing spec, written into the card
    # (training split, the declared preprocess, the hparams) -> the preprocess to train with and write
    # into the card: where it is fitted on data (a tokenizer's vocabulary) or follows an hparam (an
    # input size). None: as declared.
    fit_preprocess: Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
    # build arguments that the fitted preprocess decides, never hyper-parameters (a table's width
    # once its text columns are one-hot): (preprocess) -> {argument: value}. None: none.
    data_args: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """The model's output as the card describes it, and how a device decodes it."""

    name: str = "scores"
    layout: str = "NC"
    activation: str = "softmax"
    # extra card postprocess settings (detection decoding, mask threshold), beside "activation"
    postprocess: Mapping[str, Any] = field(default_factory=_empty)

    def card_postprocess(self) -> dict[str, Any]:
        """The card's postprocess entry: the output activation and the decoding settings."""
        return {"activation": self.activation, **dict(self.postprocess)}


@dataclass(frozen=True)
class DataSpec:
    """What training feeds the model: the default dataset, its targets and its augmentation."""

    dataset: str
    # (split, card-like mapping {"preprocess", "postprocess", "labels"}) -> the training targets for
    # Keras; None: split.y as it is (class indices)
    targets: Callable[[Any, Mapping[str, Any]], Any] | None = None
    # (uint8 pixels, rng) -> one augmented copy, added to the training set; None: no augmentation
    augment: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True)
class TrainingDefaults:
    """How a run trains unless its configuration says otherwise."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    schedule: str = "cosine"  # or "constant", "plateau", or "exponential" (decay_rate every decay_epochs)
    decay_rate: float = (
        0.9  # "exponential": the learning rate is multiplied by this ... ("plateau": on a stall)
    )
    decay_epochs: float = 1.0  # ... every this many epochs (smoothly, not in steps)
    # stop when the loss on a validation slice of the training data has not improved for this many
    # epochs, and keep the best weights; None: train for all the epochs
    early_stopping_patience: int | None = None
    validation_fraction: float = 0.1  # the slice of the training data early stopping watches
    # a Keras loss name, or a zero-argument function returning a loss object (called after Keras is
    # imported, so recipe modules stay importable without TensorFlow)
    loss: str | Callable[[], Any] = "sparse_categorical_crossentropy"
    # metrics Keras tracks during fit; None: [the evaluation metric] (right for classifiers)
    keras_metrics: tuple[Any, ...] | None = None

    @property
    def watches_slice(self) -> bool:
        """Whether a slice of the training data is set aside for early stopping or the plateau schedule."""
        return self.early_stopping_patience is not None or self.schedule == "plateau"


@dataclass(frozen=True)
class Evaluation:
    """The held-out metric reported and the bar a full training run must reach (slow tests)."""

    # a Keras metric name for classifiers, or the headline key of
    # `edgekit.runtime.metrics.METRICS[task]` (e.g. "iou", "map50")
    metric: str = "accuracy"
    bar: float = 0.0


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str
    description: str
    build: Callable[..., Any]  # (**hparams) -> keras.Model, imports Keras when called
    input: InputSpec
    data: DataSpec
    output: OutputSpec = OutputSpec()
    training: TrainingDefaults = TrainingDefaults()
    evaluation: Evaluation = Evaluation()
    hparams: Mapping[str, Any] = field(default_factory=_empty)  # the build's arguments, into the card
    architecture: tuple[tuple[str, Any], ...] = ()  # (layer class, units/filters) as documented
    # hparam overrides that make a tiny model of the same shape, for fast tests (fewer filters,
    # a smaller input); the parametrised tests build, train and export with these
    tiny: Mapping[str, Any] = field(default_factory=_empty)
    # what `edgekit tune` searches unless told otherwise: hyper-parameter -> the values worth trying
    # (names --set accepts, `weight_decay` included); empty: it searches `weight_decay` alone
    search: Mapping[str, tuple[Any, ...]] = field(default_factory=_empty)
    # (recipe, dataset) -> the recipe for that data (a table recipe whose target is a number
    # regresses instead of classifying); None: the recipe as it is, whatever the data
    adapt: Callable[[Recipe, Any], Recipe] | None = None

    def for_data(self, dataset: Any) -> Recipe:
        """The recipe as it trains on `dataset` (itself, unless it adapts to the data)."""
        return self if self.adapt is None else self.adapt(self, dataset)

    def build_for(self, preprocess: Mapping[str, Any], num_classes: int, **hparams: Any) -> Any:
        """The model for data whose preprocessing was fitted as `preprocess`: the build function
        with the arguments the data decides (a table's width) beside the hyper-parameters."""
        data_args = self.input.data_args
        return self.build(num_classes=num_classes, **hparams, **(data_args(preprocess) if data_args else {}))


RECIPES: Registry[Recipe] = Registry("recipe", package="edgekit.models.recipes")


def get_recipe(name: str) -> Recipe:
    return RECIPES.get(name)


def recipe_names() -> list[str]:
    return RECIPES.names()
