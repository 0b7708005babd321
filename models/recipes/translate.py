"""The course's translation Transformer (the seeds' PyTorch model on Multi30k), in Keras.

An Embedding of the source tokens plus a learned position encoding, dropout, a stack of Transformer
encoder layers as PyTorch's `nn.TransformerEncoderLayer` builds them by default (post-norm:
self-attention, add, LayerNorm, then a ReLU feed-forward of 4x the width, add, LayerNorm), and a
Dense softmax over the target vocabulary at every position. Trained with cross-entropy that
ignores padding; scored by token accuracy that ignores padding.

The learned positions are an Embedding looked up with the positions 0..maxlen-1, computed from the
input with `keras.ops` (a cumulative sum of ones), so the model holds only built-in Keras layers and
loads anywhere with no custom objects."""

from __future__ import annotations

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
from edgekit.runtime.datasets import Split
from edgekit.runtime.text import PAD_ID, TextSpec, Tokenizer

TRANSLATE_PREPROCESS = MappingProxyType({"kind": "text", "padding": "post", "truncating": "post"})
# the seeds' sizes: hidden 256, 8 heads, 3 layers, a 4x feed-forward, dropout 0.1
TRANSLATE_HPARAMS = MappingProxyType(
    {"num_words": 8000, "maxlen": 16, "embed_dim": 256, "heads": 8, "layers": 3, "dropout": 0.1}
)


def fit_source_tokenizer(split: Split, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The card's text preprocess: a source tokenizer fitted on the training sources (the
    `num_words` - 2 most frequent words), padded and cut at the end to `maxlen` ids."""
    tokenizer = Tokenizer.fit(list(split.x), num_words=int(hparams["num_words"]))
    spec = TextSpec(tokenizer, int(hparams["maxlen"]), preprocess["padding"], preprocess["truncating"])
    return spec.to_dict()


def target_ids(split: Split, card_like: Any) -> Any:
    """The target sentences as ids of the target vocabulary (the labels), padded like the source."""
    from edgekit.runtime.datasets.translate import target_tokenizer

    pre = card_like.preprocess
    tokenizer = target_tokenizer(tuple(card_like.labels), bool(pre["tokenizer"]["lower"]))
    return tokenizer.encode_batch(
        [str(t) for t in split.y], int(pre["maxlen"]), pre["padding"], pre["truncating"]
    )


def masked_loss():
    """Cross-entropy over the target vocabulary at every position, padding (id 0) ignored."""
    import keras

    return keras.losses.SparseCategoricalCrossentropy(ignore_class=PAD_ID)


def token_accuracy(y_true, y_pred):
    """Per-batch token accuracy, padding ignored (what Keras shows while training; the held-out
    figure is the runtime's own `token_accuracy`)."""
    from keras import ops

    y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
    words = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
    right = ops.cast(ops.equal(y_true, ops.cast(ops.argmax(y_pred, axis=-1), "int32")), "float32")
    return ops.sum(right * words) / ops.maximum(ops.sum(words), 1.0)


def build_translate_transformer(
    num_classes: int = 100,
    num_words: int = 8000,
    maxlen: int = 16,
    embed_dim: int = 256,
    heads: int = 8,
    layers: int = 3,
    dropout: float = 0.1,
):
    """Embedding + learned positions -> `layers` x (MultiHeadAttention, Add, LayerNorm, Dense 4x
    ReLU, Dense, Add, LayerNorm) -> Dense(num_classes, softmax) at every one of `maxlen` positions.

    `num_classes` is the target vocabulary (the dataset's labels); `num_words` the source one."""
    import keras
    from keras import layers as kl
    from keras import ops

    d, n_heads = int(embed_dim), int(heads)
    if d % n_heads:
        from edgekit.errors import ConfigError

        raise ConfigError(
            f"embed_dim {d} must be a multiple of heads {n_heads} (each head gets embed_dim/heads)"
        )
    tokens = keras.Input((int(maxlen),), dtype="int32", name="tokens")
    x = kl.Embedding(int(num_words), d)(tokens)
    positions = ops.cumsum(ops.ones_like(tokens), axis=1) - 1  # 0..maxlen-1 in every row
    x = kl.Add()([x, kl.Embedding(int(maxlen), d)(positions)])
    x = kl.Dropout(dropout)(x)
    for _ in range(int(layers)):
        attended = kl.MultiHeadAttention(n_heads, d // n_heads, dropout=dropout)(x, x)
        x = kl.LayerNormalization(epsilon=1e-5)(kl.Add()([x, kl.Dropout(dropout)(attended)]))
        ff = kl.Dense(4 * d, activation="relu")(x)
        ff = kl.Dropout(dropout)(kl.Dense(d)(ff))
        x = kl.LayerNormalization(epsilon=1e-5)(kl.Add()([x, ff]))
    out = kl.Dense(int(num_classes), activation="softmax", name="scores")(x)
    return keras.Model(tokens, out, name="translate_transformer")


def transformer_architecture(layers: int, embed_dim: int, classes: int) -> tuple[tuple[str, Any], ...]:
    """The (layer class, units) sequence `build_translate_transformer` makes."""
    block = (
        ("MultiHeadAttention", None),
        ("Dropout", None),
        ("Add", None),
        ("LayerNormalization", None),
        ("Dense", 4 * embed_dim),
        ("Dense", embed_dim),
        ("Dropout", None),
        ("Add", None),
        ("LayerNormalization", None),
    )
    head = (("InputLayer", None), ("Embedding", None), ("Embedding", None), ("Add", None), ("Dropout", None))
    return (*head, *block * layers, ("Dense", classes))


RECIPES.add(
    Recipe(
        name="translate-transformer",
        task="translate",
        description=(
            "the course's translation Transformer: Embedding 256 + learned positions, 3 encoder layers "
            "(8 heads, 4x feed-forward), softmax over the target vocabulary at every position"
        ),
        build=build_translate_transformer,
        input=InputSpec("tokens", (16,), "NT", TRANSLATE_PREPROCESS, fit_source_tokenizer),
        # (N, maxlen, target vocabulary): probabilities per position
        output=OutputSpec(layout="NTC", postprocess=MappingProxyType({"unknown": "copy", "end": "padding"})),
        data=DataSpec("parallel-csv", targets=target_ids),
        training=TrainingDefaults(
            epochs=12, batch_size=64, learning_rate=5e-4, loss=masked_loss, keras_metrics=(token_accuracy,)
        ),
        # held-out sentences come from frames no training sentence uses
        evaluation=Evaluation(metric="token_accuracy", bar=0.9),
        hparams=TRANSLATE_HPARAMS,
        # the head has one unit per target word: 10 as the parametrised tests build it
        architecture=transformer_architecture(3, 256, 10),
        tiny=MappingProxyType(
            {"num_words": 200, "maxlen": 16, "embed_dim": 16, "heads": 2, "layers": 1, "dropout": 0.0}
        ),
    ),
)
