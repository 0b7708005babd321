"""The word tokenizer: splitting rules on real multilingual text, Keras-like vocabulary order,
pad/truncate semantics checked against keras pad_sequences, and the card round trip."""

from __future__ import annotations

import dataclasses
import json
import unicodedata

import numpy as np
import pytest

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.text import OOV_ID, PAD_ID, RULES, TextSpec, Tokenizer, split_words

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

CORPUS = [
    "The café was great! The coffee, the cake...",
    "",
    "   \n\t  ",
    "Le café était très bon 😀",
    "我爱北京天安门",
    "Don’t panic: don't PANIC",
    "great great 👍🏽 #great",
    "हिन्दी पाठ",
]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("Café crème brûlée", ["café", "crème", "brûlée"]),
        # the same word typed with a combining accent (NFD) is the same word
        (unicodedata.normalize("NFD", "Café"), ["café"]),
        ("我爱北京", ["我", "爱", "北", "京"]),
        ("東京タワー は 高い", ["東", "京", "タワー", "は", "高", "い"]),
        ("I love it😀!!👍🏽", ["i", "love", "it", "😀", "👍"]),
        ("❤️ red heart", ["❤", "red", "heart"]),  # the variation selector is dropped
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # combining vowel signs stay inside the word
        ("Don’t 'quote' rock'n'roll", ["don't", "quote", "rock'n'roll"]),
        ("snake_case e-mail 3.14 x2", ["snake", "case", "e", "mail", "3", "14", "x2"]),
        ("$5 + 10% = <b>tag</b>", ["5", "10", "b", "tag", "b"]),
        ("", []),
        ("  \n\n\t ", []),
        ("Straße ΣΊΣΥΦΟΣ", ["straße", "σίσυφος"]),  # str.lower knows the final sigma
    ],
)
def test_split_words_rules(text: str, words: list[str]) -> None:
    assert split_words(text) == words


def test_split_words_keeps_case_when_asked() -> None:
    assert split_words("Hello CAFÉ", lower=False) == ["Hello", "CAFÉ"]


def test_fit_orders_by_frequency_then_first_seen() -> None:
    tok = Tokenizer.fit(["b a c", "c b d", "c"])
    # c: 3, b: 2, a: 1, d: 1 (a seen before d)
    assert tok.words == ("c", "b", "a", "d")
    assert dict(tok.word_index) == {"<unk>": 1, "c": 2, "b": 3, "a": 4, "d": 5}
    assert tok.vocab_size == 6
    assert tok.encode("d c zebra") == [5, 2, OOV_ID]


def test_fit_on_multilingual_corpus_with_empty_lines() -> None:
    tok = Tokenizer.fit(CORPUS)
    assert tok.words[:3] == ("great", "the", "café")  # 4, 3 and 2 times ("#great" counts)
    index = tok.word_index
    for word in ("café", "très", "我", "门", "😀", "👍", "don't", "हिन्दी"):
        assert index[word] >= 2, word
    assert tok.encode("CAFÉ 😀 我") == [index["café"], index["😀"], index["我"]]
    assert tok.encode("") == []
    assert tok.encode("  \n ") == []
    assert tok.encode("¿qué? 🚀") == [OOV_ID, OOV_ID]
    assert tok.decode(tok.encode("the unknownword café")) == ["the", "<unk>", "café"]


def test_num_words_counts_padding_and_oov_like_keras() -> None:
    tok = Tokenizer.fit(["a a a b b c d"], num_words=4)
    assert tok.words == ("a", "b")
    assert tok.vocab_size == 4
    assert tok.encode("a b c d") == [2, 3, OOV_ID, OOV_ID]
    assert max(tok.encode_batch(CORPUS, maxlen=10).ravel()) < tok.vocab_size
    with pytest.raises(ConfigError, match="num_words"):
        Tokenizer.fit(["a"], num_words=1)


def test_oov_token_is_not_a_vocabulary_word() -> None:
    tok = Tokenizer.fit(["unk unk cat"], oov_token="unk")
    assert tok.words == ("cat",)
    assert tok.encode("unk cat") == [OOV_ID, 2]


def test_encode_batch_pads_with_zero_and_empty_text_is_all_padding() -> None:
    tok = Tokenizer.fit(["one two three four"])
    batch = tok.encode_batch(["one two", "", "four three two one one"], maxlen=4)
    assert batch.dtype == np.int32 and batch.shape == (3, 4)
    np.testing.assert_array_equal(batch, [[0, 0, 2, 3], [0, 0, 0, 0], [4, 3, 2, 2]])
    assert PAD_ID not in tok.encode("one two")
    assert tok.encode_batch([], maxlen=5).shape == (0, 5)
    assert tok.encode_batch(["", ""]).shape == (2, 0)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 1, 3, 6, 20])
def test_encode_batch_matches_keras_pad_sequences(padding: str, truncating: str, maxlen: int | None) -> None:
    keras = pytest.importorskip("keras")
    tok = Tokenizer.fit(CORPUS)
    seqs = [tok.encode(t) for t in CORPUS]
    expected = keras.preprocessing.sequence.pad_sequences(
        seqs, maxlen=maxlen, padding=padding, truncating=truncating, dtype="int32"
    )
    got = tok.encode_batch(CORPUS, maxlen=maxlen, padding=padding, truncating=truncating)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)


def test_encode_batch_defaults_are_keras_pre_pre() -> None:
    tok = Tokenizer.fit(["a b c d e"])
    np.testing.assert_array_equal(tok.encode_batch(["a b c d e", "a"], maxlen=3), [[4, 5, 6], [0, 0, 2]])


def test_card_round_trip_through_json() -> None:
    tok = Tokenizer.fit(CORPUS, num_words=30, lower=False, oov_token="[UNK]")
    d = json.loads(json.dumps(tok.to_dict(), ensure_ascii=False))
    assert d["rules"] == RULES
    back = Tokenizer.from_dict(d)
    assert back == tok
    np.testing.assert_array_equal(back.encode_batch(CORPUS, maxlen=8), tok.encode_batch(CORPUS, maxlen=8))
    assert back.encode("Café") != back.encode("café")  # lower=False survived the trip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vocab": []}, "unknown tokenizer field.*'vocab'"),
        ({"rules": "keras-1"}, "rules 'keras-1' are not the rules"),
        ({"words": "abc"}, "'words' must be a list"),
        ({"words": ["a", "a"]}, "holds 'a' twice"),
        ({"words": ["a", 3]}, "non-empty strings"),
        ({"lower": "yes"}, "lower must be true or false"),
    ],
)
def test_from_dict_rejects_malformed_cards(change: dict, message: str) -> None:
    d = Tokenizer.fit(["a b"]).to_dict() | change
    with pytest.raises(DataError, match=message):
        Tokenizer.from_dict(d)


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a list"]])
def test_non_str_input_raises_data_error(bad: object) -> None:
    tok = Tokenizer.fit(["a"])
    with pytest.raises(DataError, match="must be a str"):
        tok.encode(bad)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="text 1 must be a str"):
        tok.encode_batch(["a", bad])  # type: ignore[list-item]
    with pytest.raises(DataError, match="text 0 must be a str"):
        Tokenizer.fit([bad])  # type: ignore[list-item]


def test_a_single_string_is_not_a_list_of_texts() -> None:
    with pytest.raises(DataError, match="single str"):
        Tokenizer.fit("hello world")
    with pytest.raises(DataError, match="single str"):
        Tokenizer.fit(["a"]).encode_batch("hello world")


def test_bad_options_raise_config_error() -> None:
    tok = Tokenizer.fit(["a"])
    with pytest.raises(ConfigError, match="padding"):
        tok.encode_batch(["a"], maxlen=2, padding="both")
    with pytest.raises(ConfigError, match="truncating"):
        tok.encode_batch(["a"], maxlen=2, truncating="middle")
    with pytest.raises(ConfigError, match="maxlen"):
        tok.encode_batch(["a"], maxlen=-1)


def test_tokenizer_is_frozen() -> None:
    tok = Tokenizer.fit(["a b"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        tok.words = ("x",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        tok.word_index["x"] = 9  # type: ignore[index]
    assert "vocab_size=4" in repr(tok)


# ---- TextSpec: the card's text preprocess, and the "text" feature kind ----------------------


def _spec(**kw) -> TextSpec:
    return TextSpec(Tokenizer.fit(CORPUS, num_words=20), **({"maxlen": 6} | kw))


def test_text_spec_round_trips_through_the_card_and_encodes_int32() -> None:
    spec = _spec(padding="post", truncating="post")
    d = json.loads(json.dumps(spec.to_dict(), ensure_ascii=False))
    assert d["kind"] == "text" and d["maxlen"] == 6 and d["vocab_size"] == spec.tokenizer.vocab_size
    back = TextSpec.from_dict(d)
    assert back == spec
    ids = back.encode(CORPUS)
    assert ids.dtype == np.int32 and ids.shape == (len(CORPUS), 6)
    np.testing.assert_array_equal(ids, spec.tokenizer.encode_batch(CORPUS, 6, "post", "post"))


def test_text_feature_kind_is_the_spec_encode_and_features_keep_the_ids_exact() -> None:
    from edgekit.runtime.features import features
    from edgekit.runtime.inputs import INPUT_KINDS

    spec = _spec()
    ids = INPUT_KINDS.get("text").features(spec.to_dict(), CORPUS)
    np.testing.assert_array_equal(ids, spec.encode(CORPUS))
    assert ids.dtype == np.int32
    # features() hands every kind back as float32; ids below 2**24 survive that exactly
    x = features(spec.to_dict(), CORPUS, (6,))
    np.testing.assert_array_equal(x.astype(np.int32), ids)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "image"}, "not a text spec"),
        ({"maxlen": 0}, "maxlen must be a positive integer"),
        ({"maxlen": "6"}, "maxlen must be a positive integer"),
        ({"padding": "both"}, "padding must be 'pre' or 'post'"),
        ({"vocab_size": 3}, "says vocab_size 3"),
        ({"tokenizer": {"rules": "keras-1", "words": []}}, "rules 'keras-1'"),
    ],
)
def test_text_spec_from_a_malformed_card_raises_data_error(change: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        TextSpec.from_dict(_spec().to_dict() | change)
    with pytest.raises(DataError, match="lacks tokenizer"):
        TextSpec.from_dict({"kind": "text", "maxlen": 4})
