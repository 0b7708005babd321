"""The translation Transformer: the generated corpus, the parallel-CSV loader, the translate task's
text handling through a real exported model, and (slow) training to the recipe's bar."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.datasets.synth import make
from edgekit.runtime.datasets.synth.translate import FRAMES, HELDOUT_FRAMES, corpus, corpus_csv
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.runtime.text import split_words


@pytest.mark.runtime_only
def test_the_generator_is_deterministic_word_for_word_and_holds_out_whole_frames(tmp_path):
    assert corpus_csv(300, seed=3) == corpus_csv(300, seed=3)
    assert corpus_csv(300, seed=3) != corpus_csv(300, seed=4)
    rows = corpus(600)
    assert len({r[0].lower() for r in rows}) == 600
    for source, target, _ in rows:  # the encoder-only model needs one target word per source word
        assert len(split_words(source)) == len(split_words(target)), (source, target)
    held = [r for r in rows if r[2] == "test"]
    assert 0 < len(held) < len(rows) and len(HELDOUT_FRAMES) < len(FRAMES)
    # "sie" is she or they by its verb: the corpus needs context, not a word list
    sie = {t.split()[0] for s, t, _ in rows if s.split()[0] == "Sie"}
    assert sie == {"She", "They"}
    summary = make("translate", tmp_path / "data", count=50, seed=0)
    assert "50 German -> English sentence pairs" in summary
    assert (tmp_path / "data" / "translate_corpus.csv").read_text() == corpus_csv(50, 0)


@pytest.mark.runtime_only
def test_the_parallel_csv_loader_fits_the_target_vocabulary_on_training_rows_only(tmp_path):
    ds = load_dataset("parallel-csv")
    assert ds.source == "generated" and len(ds.train) == 2400 and len(ds.heldout) == 600
    assert ds.labels[:2] == ("<pad>", "<unk>") and "she" in ds.labels and "they" in ds.labels
    path = tmp_path / "pairs.csv"
    rows = [("Ein Hund.", "A dog."), ("Eine Katze.", "A cat."), ("Das Haus.", "The house."), ("x", "")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source", "target"])
        w.writerows(rows * 3)
    ds = load_dataset("parallel-csv", str(path))
    assert ds.skipped == 3 and len(ds.train) + len(ds.heldout) == 9
    trained_on = {w for t in ds.train.y for w in split_words(t)}
    assert set(ds.labels[2:]) == trained_on
    with pytest.raises(DataError, match="'source' and 'target'"):
        bad = tmp_path / "bad.csv"
        bad.write_text("text,label\nhello,greeting\n")
        load_dataset("parallel-csv", str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("parallel-csv", str(tmp_path / "missing.csv"))


@pytest.mark.runtime_only
def test_token_accuracy_ignores_padding():
    class Card:  # the fields the metric reads of a card
        task = "translate"
        labels = ("<pad>", "<unk>", "the", "dog")
        preprocess = {"maxlen": 3, "padding": "post", "truncating": "post", "tokenizer": {"lower": True}}
        postprocess = {"activation": "softmax"}

    onehot = np.eye(4)[[[2, 3, 2], [2, 2, 0]]]  # sentence 1: "the dog" then a wrong word in padding
    targets = np.array(["The dog.", "The dog."], dtype=object)
    got = get_task("translate").metrics(Card(), [onehot], targets)
    assert got == {"token_accuracy": 0.75, "sentence_accuracy": 0.5}
    assert evaluate_outputs(Card(), [onehot], targets) == got  # what evaluate, bench and export report


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A tiny translate-transformer, trained a few epochs and exported to fp32 TFLite."""
    from edgekit.cli import app
    from edgekit.models.train import train

    folder = tmp_path_factory.mktemp("translate")
    recipe = get_recipe("translate-transformer")
    train("translate-transformer", folder, hparams=dict(recipe.tiny), epochs=1, limit=200, quiet=True)
    result = CliRunner().invoke(
        app, ["export", str(folder / "model.keras"), "--to", "tflite", "--quantize", "fp32"]
    )
    assert result.exit_code == 0, result.output
    return next(folder.glob("*.tflite"))


def _translate(path, text):
    from edgekit.runtime.predictor import Predictor

    with Predictor(path) as p:
        return p(text).results[0]


def test_the_task_copies_unknown_words_cuts_long_input_and_says_so_on_empty(tiny_tflite):
    out = _translate(tiny_tflite, "Zyxwv sieht den Hund.")
    assert out.tokens[0].word == "zyxwv" and out.tokens[0].copied  # the card says: copy
    assert all(0 <= t.score <= 1 for t in out.tokens) and out.dropped_words == 0
    long = " ".join(["der Hund"] * 20)  # 40 words, the model takes 16
    out = _translate(tiny_tflite, long)
    assert out.dropped_words == 24 and "24 word(s)" in out.note and len(out.tokens) <= 16
    out = _translate(tiny_tflite, "?!")
    assert out.text == "" and out.tokens == () and out.note == "no words to translate"


def test_run_translates_text_and_json_gives_tokens_and_scores(tiny_tflite):
    from edgekit.cli import app

    result = CliRunner().invoke(app, ["run", str(tiny_tflite), "--text", "Er sieht den Hund.", "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(next(ln for ln in io.StringIO(result.stdout) if '"results"' in ln))
    tokens = line["results"][0]["tokens"]
    assert tokens and {"word", "id", "score", "copied"} <= set(tokens[0])


@pytest.mark.slow
def test_full_training_reaches_the_bar_on_held_out_frames(tmp_path):
    from edgekit.models.train import train

    result = train("translate-transformer", tmp_path, quiet=True)
    acc = result.card.metrics["heldout_token_accuracy"]
    print(f"translate-transformer: held-out token accuracy {acc:.4f} in {result.seconds:.1f}s")
    assert acc >= get_recipe("translate-transformer").bar
