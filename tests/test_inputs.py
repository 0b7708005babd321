"""Every input kind in the registry: its features have the model's shape and type, its generated
inputs and its blank input go through its own features, and every task and recipe reads a kind the
registry holds. numpy only: no Keras here."""

from __future__ import annotations

import numpy as np
import pytest
from recipe_data import kind_example

from edgekit.card import ModelCard, TensorSpec
from edgekit.errors import UnknownNameError
from edgekit.models.recipe import get_recipe, recipe_names
from edgekit.runtime.features import features
from edgekit.runtime.inputs import INPUT_KINDS, input_kind, input_kind_names
from edgekit.runtime.tasks import Task, TaskOptions, get_task, task_names

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

# the kinds a recipe reads (the examples are built from one); `tensor` (models with no recipe, arrays
# as they are) is tested on its own in test_everyday.py
KINDS = [
    k
    for k in input_kind_names()
    if any(get_recipe(r).input.preprocess.get("kind", "image") == k for r in recipe_names())
]


def test_the_registry_finds_its_modules_and_names_a_wrong_kind():
    assert {"image", "text", "audio"} <= set(KINDS)
    assert input_kind({"size": [28, 28]}).name == "image"  # a card without a kind: image, as ever
    with pytest.raises(UnknownNameError, match="unknown input kind 'vidoe'"):
        input_kind({"kind": "vidoe"})


@pytest.mark.parametrize("name", task_names())
def test_every_task_reads_a_registered_kind(name):
    assert get_task(name).accepts in INPUT_KINDS


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_reads_a_registered_kind(name):
    assert get_recipe(name).input.preprocess.get("kind", "image") in INPUT_KINDS


def model_shape(recipe, preprocess) -> tuple[int, ...]:
    """The model's input shape: the recipe's, or what fitting the preprocessing made it (a table)."""
    return input_kind(preprocess).input_shape(preprocess, recipe.input.shape)


@pytest.mark.parametrize("kind", KINDS)
def test_features_of_a_batch_have_the_models_shape_and_type(kind):
    recipe, _, preprocess, data = kind_example(kind)
    shape = model_shape(recipe, preprocess)
    x = features(preprocess, data.heldout.x, shape)
    assert x.shape == (len(data.heldout), *shape)
    # token ids stay integer (an Embedding looks rows up by them); everything else is float32
    assert x.dtype == (np.int32 if kind == "text" else np.float32)
    assert np.isfinite(x).all()
    # one item at a time, as a device does it: the same numbers as the batch
    np.testing.assert_array_equal(features(preprocess, data.heldout.x[:1], shape), x[:1])


@pytest.mark.parametrize("kind", KINDS)
def test_generated_inputs_go_through_the_kinds_features_and_vary(kind):
    recipe, _, preprocess, _ = kind_example(kind)
    raw = input_kind(preprocess).generate(preprocess, 16)
    assert len(raw) == 16
    x = features(preprocess, raw, model_shape(recipe, preprocess))
    assert x.shape == (16, *model_shape(recipe, preprocess)) and np.isfinite(x).all()
    assert len({row.tobytes() for row in x}) == 16, "generated inputs must differ from each other"
    again = input_kind(preprocess).generate(preprocess, 16)
    np.testing.assert_array_equal(features(preprocess, again, model_shape(recipe, preprocess)), x)  # seeded


@pytest.mark.parametrize("kind", KINDS)
def test_the_blank_input_goes_through_the_kinds_features_and_the_task_gives_it(kind):
    recipe, _, preprocess, data = kind_example(kind)
    blank = input_kind(preprocess).blank(preprocess)
    x = features(preprocess, [blank], model_shape(recipe, preprocess))
    assert x.shape == (1, *model_shape(recipe, preprocess)) and np.isfinite(x).all()
    card = ModelCard(
        task=recipe.task,
        labels=data.labels,
        input=TensorSpec(recipe.input.name, (None, *model_shape(recipe, preprocess))),
        output=TensorSpec(recipe.output.name, (None, len(data.labels))),
        preprocess=preprocess,
    )
    task_blank = Task(card, [], [], TaskOptions()).blank_input()
    np.testing.assert_array_equal(features(preprocess, [task_blank], model_shape(recipe, preprocess)), x)


def test_generated_texts_use_the_cards_vocabulary_padding_and_unknown_words():
    _, hparams, preprocess, _ = kind_example("text")
    ids = features(preprocess, input_kind(preprocess).generate(preprocess, 100))
    vocab = len(preprocess["tokenizer"]["words"]) + 2
    assert ids.shape == (100, hparams["maxlen"]) and ids.max() < vocab
    assert {0, 1} <= set(np.unique(ids).tolist())  # padding and out-of-vocabulary both occur
    assert len(np.unique(ids)) > min(vocab, 100) // 2  # and many of the card's own words
    assert (ids != 0).sum(axis=1).min() < hparams["maxlen"] == (ids != 0).sum(axis=1).max()


def test_generated_clips_are_at_the_cards_rate_and_length_and_not_silent():
    from edgekit.runtime.audio import AudioSpec

    _, _, preprocess, _ = kind_example("audio")
    spec = AudioSpec.from_dict(preprocess)
    clips = input_kind(preprocess).generate(preprocess, 8)
    assert clips.shape == (8, spec.clip_samples) and clips.dtype == np.float32
    assert np.abs(clips).max() <= 1.0 and (np.sqrt((clips**2).mean(axis=1)) > 1e-4).all()
