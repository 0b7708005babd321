"""Text models end to end: the shipped corpus and its generator, the text-csv and imdb loaders and
their bad input, text-lstm and imdb-lstm trained for real, and `edgekit run --text` on the result
with the same token ids as training."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.datasets.synth.text import CORPUS_FILE, FRAMES, HELDOUT_FRAMES, LABELS, corpus_csv
from edgekit.runtime.datasets.text import CORPUS, load_text_csv

runner = CliRunner()


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# ---- the corpus ---------------------------------------------------------------------------------


def frame_shape(frame: str) -> re.Pattern:
    """A regular expression for the sentences a frame makes: its slots match anything."""
    parts = re.split(r"(\{\w+\})", frame)
    pattern = "".join(".*?" if p.startswith("{") else re.escape(p).replace(r"\ ", r"\s*") for p in parts)
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


@pytest.mark.runtime_only
def test_shipped_corpus_is_what_the_generator_makes(tmp_path):
    assert CORPUS.read_text(encoding="utf-8") == corpus_csv()
    result = runner.invoke(app, ["data", "make", "text", "--out", str(tmp_path / "made")])
    assert result.exit_code == 0, result.output
    assert "1600 sentences in 4 topics" in result.output
    assert (tmp_path / "made" / CORPUS_FILE).read_bytes() == CORPUS.read_bytes()
    other = runner.invoke(app, ["data", "make", "text", "--out", str(tmp_path / "s1"), "--seed", "1"])
    assert other.exit_code == 0 and (tmp_path / "s1" / CORPUS_FILE).read_bytes() != CORPUS.read_bytes()


@pytest.mark.runtime_only
def test_corpus_is_balanced_multilingual_and_its_heldout_is_not_a_copy_of_training():
    ds = load_dataset("text-csv")
    assert ds.labels == LABELS == ("food", "sport", "tech", "weather")
    assert np.bincount(ds.train.y).tolist() == [300] * 4 and np.bincount(ds.heldout.y).tolist() == [100] * 4
    text = " ".join(ds.train.x)
    for piece in ("café", "naïve", "футбол", "足球", "⚽", "🌧"):
        assert piece in text, piece
    # held out: whole sentence frames. Every held-out sentence has the shape of a held-out frame,
    # and no training sentence has the shape of any of them.
    shapes = [frame_shape(FRAMES[i]) for i in sorted(HELDOUT_FRAMES)]
    assert all(any(p.fullmatch(t) for p in shapes) for t in ds.heldout.x)
    assert not any(p.fullmatch(t) for p in shapes for t in ds.train.x)

    # and no held-out sentence is within a couple of words of a training one
    def words(t: str) -> set[str]:
        return set(t.lower().replace(",", " ").replace(".", " ").split())

    train_sets = [words(t) for t in ds.train.x]
    nearest = [max(len(h & t) / len(h | t) for t in train_sets) for h in map(words, ds.heldout.x)]
    assert max(nearest) < 0.7, max(nearest)  # the nearest pair shares about half its words


# ---- the text-csv loader ------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.runtime_only
def test_text_csv_without_the_needed_columns_names_the_columns_it_found(tmp_path):
    path = _write(tmp_path / "reviews.csv", "sentence,category\nnice café,food\n".encode())
    with pytest.raises(
        DataError, match=r"reviews.csv has the column\(s\) 'sentence', 'category'.*'text' and a 'label'"
    ):
        load_dataset("text-csv", str(path))
    # through the CLI: one red line, exit 1, no traceback
    result = runner.invoke(app, ["train", "text-lstm", "--data", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "'sentence', 'category'" in result.output
    empty = _write(tmp_path / "empty.csv", b"")
    with pytest.raises(DataError, match="empty.csv is empty"):
        load_dataset("text-csv", str(empty))


@pytest.mark.runtime_only
def test_text_csv_skips_empty_and_non_utf8_rows_and_counts_them_with_line_numbers(tmp_path):
    rows = [
        "\ufefftext,label",  # Excel's BOM
        "Le café était très bon 😀,good",
        "",
        "   ,good",
        "naïve and dull,bad",
        "Ужасный фильм,bad",
        "我爱北京,good",
        "what a waste,bad",
        "lovely,good",
        "LOVELY,good",  # the same text again: dropped, so it cannot be both trained on and held out
        "awful,bad",
    ]
    data = "\r\n".join(rows).encode("utf-8").replace("naïve".encode(), b"na\xefve")  # a latin-1 byte
    ds = load_dataset("text-csv", str(_write(tmp_path / "mixed.csv", data)))
    assert ds.labels == ("bad", "good")
    assert len(ds.train) + len(ds.heldout) == 6 and ds.skipped == 3
    assert "3 row(s) skipped" in ds.description
    assert "1 not UTF-8 (e.g. byte 0xef) (line 5)" in ds.description
    assert "1 empty (line 3)" in ds.description and "1 with an empty text (line 4)" in ds.description
    assert "1 repeated text(s) dropped" in ds.description
    texts = set(ds.train.x) | set(ds.heldout.x)
    assert "Le café était très bon 😀" in texts and "我爱北京" in texts
    # no split column: a fixed, stratified held-out share of each class
    assert sorted(ds.heldout.y.tolist()) == [0, 1]
    again = load_dataset("text-csv", str(tmp_path / "mixed.csv"))
    assert list(again.heldout.x) == list(ds.heldout.x)


@pytest.mark.runtime_only
def test_text_csv_class_list_beside_the_file_fixes_the_order_and_rejects_other_labels(tmp_path):
    path = _write(tmp_path / "t.csv", b"text,label\na,pos\nb,neg\nc,pos\nd,neg\ne,nuetral\n")
    (tmp_path / "labels.txt").write_text("pos\nneg\nneutral\n")
    with pytest.raises(
        DataError, match=r"1 row\(s\) of t.csv have labels outside the class list.*'nuetral' \(line 6\)"
    ):
        load_dataset("text-csv", str(path))
    _write(path, b"text,label\na,pos\nb,neg\nc,pos\nd,neg\n")
    ds = load_dataset("text-csv", str(tmp_path))  # a folder holding one CSV works too
    assert ds.labels == ("pos", "neg", "neutral")
    assert set(ds.train.y.tolist()) | set(ds.heldout.y.tolist()) == {0, 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,label,split\na,x,train\nb,y,train\nc,x,dev\n", "split value.*'dev'"),
        (b"text,label,split\na,x,train\nb,y,train\n", "some rows 'train' and some 'test'"),
        (b"text,label,split\na,x,train\nb,x,train\nc,y,test\n", "class 'y'.*no training rows"),
        (b"text,label\na,x\nb,x\nc,y\n", "class 'y'.*has 1 row"),
        (b"text,label\na,x\nb,x\n", "one class"),
        (b"text,label\n\n,x\n", "no rows with a text and a label"),
        (b'text,label\n"unclosed,x\n', "no rows|not valid CSV"),
    ],
)
@pytest.mark.runtime_only
def test_text_csv_bad_files_get_one_clear_sentence(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        load_text_csv(_write(tmp_path / "bad.csv", content))


@pytest.mark.runtime_only
def test_text_csv_missing_path_says_what_to_give(tmp_path):
    with pytest.raises(DataError, match="does not exist: give --data a CSV"):
        load_dataset("text-csv", str(tmp_path / "nope.csv"))


# ---- the imdb loader ----------------------------------------------------------------------------

POSITIVE = ["great", "wonderful", "loved", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "hated", "dull", "waste"]
NEUTRAL = ["the", "film", "plot", "actor", "was", "and", "this"]


def _fake_imdb(folder: Path, n: int = 24, seed: int = 0) -> Path:
    """An imdb.npz laid out as keras.datasets keeps it (ragged word ranks as object arrays, 0/1
    labels) and its imdb_word_index.json, with reviews whose sentiment words decide the label."""
    rng = np.random.default_rng(seed)
    vocab = NEUTRAL + POSITIVE + NEGATIVE
    index = {w: i + 1 for i, w in enumerate(vocab)}  # ranks start at 1, as Keras' index does
    arrays = {}
    for part in ("train", "test"):
        seqs, labels = np.empty(n, dtype=object), np.arange(n) % 2
        for i, label in enumerate(labels):
            words = list(rng.choice(NEUTRAL, 6)) + list(rng.choice(POSITIVE if label else NEGATIVE, 3))
            rng.shuffle(words)
            seqs[i] = [index[w] for w in words] + [999]  # a rank the index lacks is left out
        arrays[f"x_{part}"], arrays[f"y_{part}"] = seqs, labels
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "imdb.npz", **arrays)
    (folder / "imdb_word_index.json").write_text(json.dumps(index))
    return folder / "imdb.npz"


@pytest.mark.runtime_only
def test_imdb_from_the_keras_cache_decodes_word_indices_to_text(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    _fake_imdb(tmp_path / "datasets")
    ds = load_dataset("imdb")
    assert ds.labels == ("negative", "positive") and ds.source == str(tmp_path / "datasets" / "imdb.npz")
    assert len(ds.train) == len(ds.heldout) == 24
    for text, label in zip(ds.heldout.x, ds.heldout.y):
        words = text.split()
        assert len(words) == 9  # the unknown rank 999 left out
        assert set(words) & set(POSITIVE if label else NEGATIVE)
    assert set(ds.train.y[:8].tolist()) == {0, 1}  # shuffled: a --limit slice holds both classes


@pytest.mark.runtime_only
def test_imdb_missing_data_or_word_index_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DataError, match="not in the Keras cache.*--data keras.*aclImdb folder"):
        load_dataset("imdb")
    npz = _fake_imdb(tmp_path / "datasets")
    (tmp_path / "datasets" / "imdb_word_index.json").unlink()
    with pytest.raises(DataError, match="word indices only.*imdb_word_index.json.*--data keras"):
        load_dataset("imdb")
    with pytest.raises(DataError, match="is not an aclImdb folder"):
        load_dataset("imdb", str(npz.with_suffix(".zip")))


@pytest.mark.runtime_only
def test_imdb_npz_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    npy.write(pickle.dumps(Payload()))
    path = tmp_path / "imdb.npz"
    with zipfile.ZipFile(path, "w") as z:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            z.writestr(f"{key}.npy", npy.getvalue())
    (tmp_path / "imdb_word_index.json").write_text("{}")
    with pytest.raises(DataError, match="refusing to load .*system"):
        load_dataset("imdb", str(path))


@pytest.mark.runtime_only
def test_imdb_from_an_aclimdb_folder_skips_unreadable_reviews(tmp_path):
    root = tmp_path / "aclImdb"
    for part in ("train", "test"):
        for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
            folder = root / part / label
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_7.txt").write_text(f"This film was {words[i]}.<br /><br />Café scene!")
    (root / "train" / "pos" / "9_9.txt").write_bytes(b"caf\xe9 latin-1")
    (root / "train" / "unsup").mkdir()  # the unlabelled part is not read
    ds = load_dataset("imdb", str(tmp_path))  # the folder above aclImdb works too
    assert ds.labels == ("negative", "positive") and ds.skipped == 1
    assert len(ds.train) == 6 and len(ds.heldout) == 6 and "1 empty or non-UTF-8" in ds.description
    assert all("Café scene!" in t for t in ds.train.x)
    (root / "test" / "neg").rename(root / "test" / "negative")
    with pytest.raises(DataError, match=r"lacks test/neg: give --data an aclImdb folder \(train/pos"):
        load_dataset("imdb", str(root))


def test_imdb_lstm_trains_a_step_on_a_tiny_made_up_cache_and_exports(tmp_path, monkeypatch):
    from edgekit.models.train import train
    from edgekit.runtime.predictor import Predictor

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    _fake_imdb(tmp_path / "keras" / "datasets")
    recipe = get_recipe("imdb-lstm")
    result = train(
        "imdb-lstm", tmp_path / "run", hparams=dict(recipe.tiny), epochs=1, batch_size=8, quiet=True
    )
    card = result.card
    assert card.input.dtype == "int32" and card.input.shape == (None, recipe.tiny["maxlen"])
    assert card.postprocess["activation"] == "sigmoid" and card.labels == ("negative", "positive")
    # the vocabulary: the words of the training reviews, decoded from their indices
    assert set(card.preprocess["tokenizer"]["words"]) == set(NEUTRAL + POSITIVE + NEGATIVE)
    assert 0.0 <= card.metrics["heldout_accuracy"] <= 1.0
    with Predictor(result.model_path) as predictor:
        results = predictor("A wonderful film, loved the café scene 😀").results
    assert {r.label for r in results} == {"negative", "positive"}
    assert sum(r.score for r in results) == pytest.approx(1.0, abs=1e-5)
    # TFLite (the LSTM unrolled over a batch of 1, same weights) and ONNX, validated against Keras
    for fmt in ("tflite", "onnx"):
        out = runner.invoke(app, ["export", str(result.model_path), "--to", fmt], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        with Predictor(result.model_path.with_suffix(f".{fmt}")) as predictor:
            assert predictor.card.parity["passed"] and predictor.session.inputs[0].dtype == np.int32
            assert predictor("dull and boring").results[0].label in ("negative", "positive")


# ---- text-lstm: training-side and device-side tokenisation, the runtime --------------------------


@pytest.fixture(scope="module")
def tiny_text_lstm(tmp_path_factory) -> Path:
    """text-lstm with its tiny hparams, trained 2 epochs on the shipped corpus; num_words large
    enough that the vocabulary is every word of the training sentences."""
    from edgekit.models.train import train

    out = tmp_path_factory.mktemp("text-lstm")
    hparams = {**get_recipe("text-lstm").tiny, "num_words": 1000}
    train("text-lstm", out, hparams=hparams, epochs=2, quiet=True)
    return out / "model.keras"


def test_runtime_tokenisation_is_the_training_one(tiny_text_lstm):
    from edgekit.card import ModelCard
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.text import TextSpec

    card = ModelCard.load(tiny_text_lstm.parent / "card.json")
    ds = load_dataset("text-csv")
    # the vocabulary was fitted on the training split only: every word of it is in a training
    # sentence, and the words only the held-out sentence frames use are out of vocabulary
    spec = TextSpec.from_dict(card.preprocess)
    assert spec.tokenizer.vocab_size < 1000
    seen = {i for t in ds.train.x for i in spec.tokenizer.encode(t)}
    assert seen == set(range(2, spec.tokenizer.vocab_size))  # every word, and no OOV
    heldout_text = " ".join(ds.heldout.x).lower()
    for word in ("believe", "nobody", "according", "learned"):
        assert word in heldout_text and word not in spec.tokenizer.word_index, word
    trained_on = card_inputs(card, ds.heldout)  # what training and export validation feed Keras
    with Predictor(tiny_text_lstm) as predictor:
        assert predictor.task.accepts == "text"
        on_device = np.concatenate([predictor.task.preprocess(t)[0] for t in ds.heldout.x])
        assert on_device.dtype == np.int32
        np.testing.assert_array_equal(on_device, trained_on)
        assert (on_device == 1).any() and (on_device == 0).any()  # OOV and padding both occur
        got = np.stack([predictor.task.probabilities(predictor.infer(t)) for t in ds.heldout.x[:20]])
    from edgekit.tfutil import import_tf

    _, keras = import_tf()
    model = keras.saving.load_model(tiny_text_lstm)
    np.testing.assert_allclose(got, model.predict(trained_on[:20], verbose=0), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_text_tflite(tiny_text_lstm) -> Path:
    result = runner.invoke(app, ["export", str(tiny_text_lstm), "--to", "tflite"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return tiny_text_lstm.with_suffix(".tflite")


def test_edgekit_run_tflite_with_text_prints_json_labels_that_match_keras(tiny_text_lstm, tiny_text_tflite):
    from edgekit.card import ModelCard
    from edgekit.runtime.datasets import Split
    from edgekit.runtime.features import model_inputs
    from edgekit.tfutil import import_tf

    text = "Le café served cold soup 🍜 and the croissant was naïve"
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--text", text, "--json", "--top-k", "4"])
    assert result.exit_code == 0, result.output
    record, summary = _json_lines(result.stdout)
    assert record["source"] == "text" and summary["summary"]["processed"] == 1
    scores = {r["label"]: r["score"] for r in record["results"]}
    assert set(scores) == set(LABELS)
    card = ModelCard.load(tiny_text_lstm.parent / "card.json")
    _, keras = import_tf()
    x = model_inputs(
        card.preprocess, tuple(card.input.shape[1:]), Split(np.array([text], object), np.zeros(1))
    )
    expected = keras.saving.load_model(tiny_text_lstm).predict(x, verbose=0)[0]
    for i, label in enumerate(card.labels):
        assert scores[label] == pytest.approx(float(expected[i]), abs=1e-5)


def test_text_file_and_stdin_with_non_ascii_empty_and_non_utf8_lines(tiny_text_tflite, tmp_path):
    lines = ["The striker scored twice ⚽", "", "   ", "дождь и снег", "na\xefve", "我爱咖啡"]
    data = "\n".join(lines).encode("utf-8").replace("na\xefve".encode(), b"na\xefve")
    path = _write(tmp_path / "items.txt", data)
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--source", str(path), "--json"])
    assert result.exit_code == 0, result.output
    records = _json_lines(result.stdout)
    assert [r["source"] for r in records[:-1]] == [f"{path}:1", f"{path}:4", f"{path}:6"]
    assert records[-1]["summary"]["skipped"] == 3
    assert f"{path} line 2: empty" in result.stderr and f"{path} line 3: empty" in result.stderr
    assert f"{path} line 5: not UTF-8 (byte 0xef at 2)" in result.stderr
    piped = runner.invoke(app, ["run", str(tiny_text_tflite), "--source", "-"], input=data)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout.count("stdin:") == 3 and "stdin line 5: not UTF-8" in piped.stderr
    # nothing processable: exit 1 with one sentence
    bad = _write(tmp_path / "bad.txt", b"\n\xff\xfe\n  \n")
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--source", str(bad)])
    assert result.exit_code == 1 and "could be processed" in result.output
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--text", "  "])
    assert result.exit_code == 1 and "could be processed" in result.output


def test_text_model_and_image_source_or_image_model_and_text_are_refused(tiny_text_tflite, trained, tmp_path):
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--source", "0"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "classify-text model and takes text, but '0' is a camera source" in result.output
    result = runner.invoke(app, ["run", str(trained), "--text", "is it a seven?"])
    assert (
        result.exit_code == 1 and "takes image, but 'text://is it a seven?' is a text source" in result.output
    )
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--text", "a", "--source", "x.txt"])
    assert result.exit_code == 2 and "--source or --text" in result.output
    result = runner.invoke(app, ["run", str(tiny_text_tflite), "--source", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_text_lstm_exports_to_onnx_with_the_same_numbers(tiny_text_lstm):
    from edgekit.runtime.predictor import Predictor

    result = runner.invoke(
        app, ["export", str(tiny_text_lstm), "--to", "onnx", "--force"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    onnx_path = tiny_text_lstm.with_suffix(".onnx")
    with Predictor(onnx_path) as predictor:
        assert predictor.card.parity["passed"] and predictor.card.parity["max_abs_diff"] < 1e-4
        assert predictor("the rain poured all day 🌧️").results[0].label in LABELS


# ---- the bars (slow) ------------------------------------------------------------------------------


@pytest.mark.slow
def test_text_lstm_reaches_its_bar_on_heldout_sentence_frames(tmp_path):
    from edgekit.models.train import train

    result = train("text-lstm", tmp_path, quiet=True)
    acc = result.card.metrics["heldout_accuracy"]
    print(f"text-lstm: held-out accuracy {acc:.4f} (chance 0.25) in {result.seconds:.1f}s")
    assert acc >= get_recipe("text-lstm").evaluation.bar


@pytest.mark.slow
def test_imdb_lstm_reaches_its_bar_on_the_official_test_set(tmp_path):
    from edgekit.models.train import train

    # the user's own Keras cache (conftest points KERAS_HOME at an empty folder for every other test)
    cached = Path.home() / ".keras" / "datasets" / "imdb.npz"
    try:
        load_dataset("imdb", str(cached))
    except DataError as e:
        pytest.skip(f"no IMDB here (nothing downloads in tests): {e}")
    result = train("imdb-lstm", tmp_path, data=str(cached), quiet=True)
    acc = result.card.metrics["heldout_accuracy"]
    print(f"imdb-lstm: held-out accuracy {acc:.4f} in {result.seconds:.1f}s")
    assert acc >= get_recipe("imdb-lstm").evaluation.bar
