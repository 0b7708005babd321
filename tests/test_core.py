"""The registry, the error hierarchy and the model card."""

from __future__ import annotations

import json

import pytest

from edgekit.card import CARD_VERSION, ModelCard, TensorSpec
from edgekit.errors import ModelFileError, UnknownNameError
from edgekit.registry import Registry

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too


def test_registry_suggests_the_closest_name():
    reg: Registry[int] = Registry("recipe")
    reg.add("mnist-cnn", 1)
    reg.add("mnist-mlp", 2)
    assert reg.get("mnist-cnn") == 1
    with pytest.raises(UnknownNameError, match=r"unknown recipe 'mnist-cnm': did you mean mnist-cnn\?"):
        reg.get("mnist-cnm")
    with pytest.raises(UnknownNameError, match="known: mnist-cnn, mnist-mlp"):
        reg.get("resnet")
    with pytest.raises(ValueError, match="twice"):
        reg.add("mnist-cnn", 3)


def _card() -> ModelCard:
    return ModelCard(
        task="classify-image",
        labels=tuple("0123456789"),
        input=TensorSpec("image", (None, 28, 28, 1), "float32", "NHWC"),
        output=TensorSpec("scores", (None, 10), "float32", "NC"),
        preprocess={"kind": "image", "size": [28, 28], "channels": 1, "scale": 1 / 255, "offset": 0.0},
        recipe="mnist-cnn",
        hparams={"epochs": 3},
        dataset={"name": "mnist", "size": 5000},
        metrics={"heldout_accuracy": 0.98},
        weights_sha256="ab" * 32,
    )


def test_card_round_trips_through_json():
    card = _card()
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert json.loads(card.to_json())["schema_version"] == CARD_VERSION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 99}, "schema_version 99 is not supported"),
        ({"task": 3}, "field task must be str, got int"),
        ({"labels": "0123"}, "field labels must be list"),
        ({"input": {"name": "x", "shape": [1, -2]}}, r"input\.shape must hold sizes"),
        ({"output": None}, "field output must be dict, got missing"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_card_rejects_malformed_fields_naming_them(change, message):
    d = json.loads(_card().to_json())
    d.update(change)
    with pytest.raises(ModelFileError, match=message):
        ModelCard.from_json(json.dumps(d))


def test_card_rejects_text_that_is_not_json():
    with pytest.raises(ModelFileError, match="not valid JSON"):
        ModelCard.from_json("{nope")
