"""The registry, the error hierarchy and the model card."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgekit.card import CARD_VERSION, ModelCard, TensorSpec
from edgekit.errors import ModelFileError, UnknownNameError
from edgekit.registry import Registry

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too


def test_registry_suggests_the_closest_name():
    reg: Registry[int] = Registry("recipe")
    reg.add(1, "mnist-cnn")
    reg.add(2, "mnist-mlp")
    assert reg.get("mnist-cnn") == 1
    with pytest.raises(UnknownNameError, match=r"unknown recipe 'mnist-cnm': did you mean mnist-cnn\?"):
        reg.get("mnist-cnm")
    with pytest.raises(UnknownNameError, match="known: mnist-cnn, mnist-mlp"):
        reg.get("resnet")
    with pytest.raises(ValueError, match="twice"):
        reg.add(3, "mnist-cnn")


def test_registry_keys_entries_by_their_own_name():
    @dataclasses.dataclass(frozen=True)
    class Entry:
        name: str

    reg: Registry[Entry] = Registry("thing")
    reg.add(Entry("a"))
    assert reg.get("a") == Entry("a") and reg.names() == ["a"]
    with pytest.raises(ValueError, match="another name"):
        reg.add(Entry("b"), "c")  # a name given twice must agree
    with pytest.raises(TypeError, match="needs a name"):
        reg.add(object())


def test_registry_loads_its_package_once_on_first_use(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins_for_test"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from edgekit.registry import Registry\nREG = Registry('plugin', package=__name__)\nLOADS = []\n"
    )
    for name in ("beta", "alpha", "_private"):
        (pkg / f"{name}.py").write_text(
            f"from plugins_for_test import REG, LOADS\nLOADS.append({name!r})\nREG.add(object(), {name!r})\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugins_for_test

    assert plugins_for_test.LOADS == []  # nothing is imported until the registry is read
    assert plugins_for_test.REG.names() == ["alpha", "beta"]  # sorted, `_private` left out
    assert "beta" in plugins_for_test.REG and len(plugins_for_test.REG) == 2
    assert plugins_for_test.LOADS == ["alpha", "beta"]  # once


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
