"""The image classifier's pre- and post-processing against their definitions, with no model: the
task is made from a card and the model's tensor descriptions, as the Predictor makes it. The fast
path (a frame at the model's size goes through a 256-entry table) must give exactly what the full
path gives (prepare_image, normalize, quantize), and the scores must come out as the card's
activation defines them."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.card import ModelCard, TensorSpec
from edgekit.errors import DataError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.preprocess import ImageSpec, normalize, prepare_image, quantize
from edgekit.runtime.tasks.classify import ClassifyImage, softmax, top_k

pytestmark = pytest.mark.runtime_only

LABELS = ("zero", "one", "two", "three")


def task(
    spec: ImageSpec,
    shape: tuple,
    dtype=np.float32,
    quant=None,
    activation: str | None = None,
    out_dtype=np.float32,
    out_quant=None,
    top: int = 5,
) -> ClassifyImage:
    post = {"activation": activation} if activation else {}
    card = ModelCard(
        task="classify-image",
        labels=LABELS,
        input=TensorSpec("x", list(shape), np.dtype(dtype).name),
        output=TensorSpec("y", [1, 4], np.dtype(out_dtype).name),
        preprocess=spec.to_dict(),
        postprocess=post,
    )
    inputs = [TensorInfo("x", shape, np.dtype(dtype), quant)]
    outputs = [TensorInfo("y", (1, 4), np.dtype(out_dtype), out_quant)]
    return ClassifyImage(card, inputs, outputs, TaskOptions(top_k=top))


def full_path(frame: np.ndarray, spec: ImageSpec, shape: tuple, quant=None, dtype=np.int8) -> np.ndarray:
    x = normalize(prepare_image(frame, spec), spec).reshape(shape)
    return quantize(x, *quant, dtype) if quant else x


RGB = ImageSpec((6, 5), 3, scale=2 / 255, offset=-1.0)
GRAY = ImageSpec((6, 5), 1)


@pytest.mark.parametrize(
    ("spec", "shape", "quant", "dtype"),
    [
        (RGB, (1, 6, 5, 3), None, np.float32),
        (RGB, (1, 6, 5, 3), (2 / 255, 0), np.int8),
        (GRAY, (1, 6, 5, 1), (1 / 255, -128), np.int8),
        (GRAY, (1, 30), None, np.float32),  # an MLP on flat pixels
        (GRAY, (1, 6, 5, 1), (1 / 255, 0), np.uint8),
    ],
    ids=["rgb-float", "rgb-int8", "gray-int8", "flat-mlp", "gray-uint8"],
)
def test_the_fast_path_is_the_full_path_bit_for_bit(spec, shape, quant, dtype):
    t = task(spec, shape, dtype, quant)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (6, 5, spec.channels), dtype=np.uint8)]  # at the model's size: the table
    if spec.channels == 1:
        frames.append(frames[0][:, :, 0])  # H x W
    frames.append(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))  # another size: resized
    for frame in frames:
        (x,) = t.preprocess(frame)
        want = full_path(frame, spec, shape, quant, dtype)
        assert x.shape == shape and x.dtype == want.dtype
        np.testing.assert_array_equal(x, want)


def test_the_fast_path_turns_bgr_into_rgb():
    t = task(RGB, (1, 6, 5, 3))
    frame = np.zeros((6, 5, 3), np.uint8)
    frame[..., 0] = 255  # blue, in OpenCV's order
    (x,) = t.preprocess(frame)
    assert (x[..., 2] == 1.0).all() and (x[..., 0] == -1.0).all()


def test_frames_that_are_not_8_bit_are_computed():
    t = task(GRAY, (1, 6, 5, 1))
    frame = np.linspace(0, 255, 30).reshape(6, 5).astype(np.float32)
    (x,) = t.preprocess(frame)
    np.testing.assert_allclose(x.reshape(6, 5), frame / 255, atol=1e-6)  # the values, not rounded to 8 bits


def test_paper_frames_at_the_model_size_still_go_through_the_mnist_crop():
    """An MNIST-style card: a light-ground frame at 28x28 is inverted and cropped, not table-read."""
    spec = ImageSpec((28, 28), 1, polarity="light-on-dark", crop="centre-of-mass")
    t = task(spec, (1, 28, 28, 1))
    paper = np.full((28, 28), 230, np.uint8)
    paper[6:22, 12:16] = 20  # a dark stroke
    (x,) = t.preprocess(paper)
    np.testing.assert_array_equal(x, full_path(paper, spec, (1, 28, 28, 1)))
    assert x[0, 0, 0, 0] == 0.0  # the ground is black after inversion
    dark = 255 - paper  # already MNIST's form: the table, unchanged
    (y,) = t.preprocess(dark)
    np.testing.assert_array_equal(y.reshape(28, 28), normalize(dark, spec))


def test_a_card_that_does_not_fit_the_model_input_is_one_sentence():
    with pytest.raises(DataError, match="makes 90 values but the model input"):
        task(RGB, (1, 6, 5, 1))


def test_scores_follow_the_cards_activation():
    probs = np.array([[0.1, 0.6, 0.05, 0.25]], np.float32)
    got = task(RGB, (1, 6, 5, 3)).postprocess([probs])
    assert [(r.index, r.label) for r in got] == [(1, "one"), (3, "three"), (0, "zero"), (2, "two")]
    np.testing.assert_allclose([r.score for r in got], [0.6, 0.25, 0.1, 0.05], rtol=1e-6)
    logits = np.log(probs) + 3.0
    got = task(RGB, (1, 6, 5, 3), activation="logits").postprocess([logits])
    np.testing.assert_allclose([r.score for r in got], [0.6, 0.25, 0.1, 0.05], rtol=1e-5)
    # one sigmoid unit: P(class 1), and class 0 gets the rest
    one = task(RGB, (1, 6, 5, 3), activation="sigmoid")
    got = one.postprocess([np.array([[0.8]], np.float32)])
    assert [(r.index, round(r.score, 6)) for r in got] == [(1, 0.8), (0, 0.2)]
    # quantized scores are read back through (q - zero_point) * scale
    q = task(RGB, (1, 6, 5, 3), out_dtype=np.uint8, out_quant=(1 / 256, 0))
    got = q.postprocess([np.array([[26, 154, 12, 64]], np.uint8)])
    assert got[0].index == 1 and got[0].score == pytest.approx(154 / 256)
    assert len(task(RGB, (1, 6, 5, 3), top=2).postprocess([probs])) == 2


def test_top_k_is_the_k_best_in_order_with_ties_in_class_order():
    for n in (5, 64, 65, 300):  # both ways it is computed: few scores, and many
        rng = np.random.default_rng(n)
        p = rng.permutation(n).astype(np.float32) / n
        p[3] = p[4] = 2.0  # a tie at the top: class 3 first
        labels = [f"c{i}" for i in range(n - 1)]  # the last class has no label: its number
        got = top_k(p, 4, labels)
        want = sorted(range(n), key=lambda i: (-p[i], i))[:4]
        assert [r.index for r in got] == want and [r.index for r in got][:2] == [3, 4]
        assert [r.score for r in got] == [float(p[i]) for i in want]
        assert got[0].label == "c3"
        every = top_k(p, n + 10, labels)  # k past the classes: all of them
        assert len(every) == n
        assert all(r.label == (labels[r.index] if r.index < n - 1 else str(r.index)) for r in every)
        assert any(r.label == str(n - 1) for r in every)
    one = top_k(np.array([0.2, 0.9], np.float32), 1, ["a", "b"])
    assert one == [(1, "b", pytest.approx(0.9))] and one[0].to_dict() == {
        "index": 1,
        "label": "b",
        "score": 0.9,
    }


def test_softmax_is_exp_over_its_sum_along_the_last_axis():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1001.0]])
    want = np.exp(x - x.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax(x), want, rtol=1e-12)
    np.testing.assert_allclose(softmax(x).sum(axis=-1), 1.0)
    assert softmax(x)[0].argmax() == 2 and np.isfinite(softmax(x)).all()


def test_a_dynamic_batch_and_a_colour_frame_for_a_grey_model():
    t = task(GRAY, (None, 6, 5, 1))  # the batch left open, as many ONNX exports have it
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)  # BGR at the model's size: made grey first
    (x,) = t.preprocess(frame)
    assert x.shape == (1, 6, 5, 1)
    np.testing.assert_array_equal(x, full_path(frame, GRAY, (1, 6, 5, 1)))


def test_a_paper_check_on_a_model_that_is_not_square():
    spec = ImageSpec((20, 12), 1, polarity="light-on-dark")
    t = task(spec, (1, 20, 12, 1))
    paper = np.full((20, 12), 230, np.uint8)
    (x,) = t.preprocess(paper)
    np.testing.assert_array_equal(x, full_path(paper, spec, (1, 20, 12, 1)))
    assert (x == normalize(np.uint8(25), spec)).all()  # inverted


def test_top_1_of_many_scores_is_the_best():
    p = np.random.default_rng(4).random(300).astype(np.float32)
    assert top_k(p, 1, ())[0].index == int(p.argmax())
    assert [r.index for r in top_k(p, 2, ())] == list(np.argsort(-p)[:2])


def test_one_output_unit_is_p_of_class_1_only_for_a_sigmoid():
    one = task(RGB, (1, 6, 5, 3))  # softmax (the default) over one unit: that one score
    assert [(r.index, r.score) for r in one.postprocess([np.array([[0.7]], np.float32)])] == [
        (0, pytest.approx(0.7))
    ]
    multi = task(RGB, (1, 6, 5, 3), activation="sigmoid")  # independent units (multi-label): as they are
    got = multi.postprocess([np.array([[0.2, 0.9, 0.4, 0.1]], np.float32)])
    assert [r.index for r in got] == [1, 2, 0, 3] and got[0].score == pytest.approx(0.9)
