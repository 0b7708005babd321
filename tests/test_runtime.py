"""The runtime on real files: images, folders, video, no TensorFlow anywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_video, run_python

from edgekit.errors import ModelFileError, SourceError
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.sources import open_source


@pytest.mark.runtime_only
def test_importing_the_runtime_pulls_in_no_tensorflow():
    modules = [
        "edgekit.runtime",
        "edgekit.runtime.predictor",
        "edgekit.runtime.backends.tflite",
        "edgekit.runtime.backends.onnxruntime",
        "edgekit.runtime.backends.keras",
        "edgekit.runtime.tasks.classify",
        "edgekit.runtime.sources.files",
        "edgekit.runtime.sources.camera",
        "edgekit.runtime.sinks",
        "edgekit.runtime.timing",
        "edgekit.runtime.detection",
        "edgekit.benchmark.runner",
        "edgekit.runtime.datasets",
        "edgekit.cli",
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + ("print([m for m in ('tensorflow', 'keras', 'tf2onnx', 'tf_keras') if m in sys.modules])")
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", ["tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"])
def test_folder_of_pngs_is_classified(artifacts, digit_pngs, kind):
    fmt, q = kind.split("-")
    folder, labels = digit_pngs
    with Predictor(artifacts[(fmt, q)]) as p, open_source(str(folder)) as src:
        got = [int(p(item.data).results[0].label) for item in src]
    assert len(got) == 8
    assert sum(g == t for g, t in zip(got, labels)) >= 6  # a 2-epoch model on real digits


def test_corrupt_image_in_a_folder_is_skipped_and_counted(artifacts, digit_pngs):
    folder, _ = digit_pngs
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    with Predictor(artifacts[("tflite", "fp32")]) as p, open_source(str(folder)) as src:
        n = sum(1 for item in src if p(item.data).results)
        assert (n, src.skipped) == (8, 1)
        assert "broken.png" in src.skip_reasons[0]


def test_a_run_of_bad_frames_keeps_a_bounded_report(artifacts, digit_pngs):
    """A source that skips for days keeps a count and the first few reasons, never a growing list;
    the CLI says how many more there were."""
    from typer.testing import CliRunner

    from edgekit.cli import app
    from edgekit.runtime.sources import KEPT_REASONS

    folder, _ = digit_pngs
    for i in range(KEPT_REASONS + 5):
        (folder / f"broken{i:02d}.png").write_bytes(b"\x89PNG not really")
    with open_source(str(folder)) as src:
        assert sum(1 for _ in src) == 8
        assert src.skipped == KEPT_REASONS + 5 and len(src.skip_reasons) == KEPT_REASONS
    r = CliRunner().invoke(app, ["run", str(artifacts[("onnx", "fp32")]), "--source", str(folder)])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("/broken") == KEPT_REASONS and "... and 5 more skipped" in r.stderr


def test_video_frames_are_classified(artifacts, tmp_path, mnist):
    import cv2

    digits = [
        cv2.resize(mnist.heldout.x[i * 100], (112, 112), interpolation=cv2.INTER_NEAREST) for i in range(10)
    ]
    video = make_video(tmp_path / "digits.avi", digits)
    with Predictor(artifacts[("onnx", "fp32")]) as p, open_source(str(video)) as src:
        got = [int(p(item.data).results[0].label) for item in src]
    assert len(got) == 10
    assert sum(g == i for i, g in enumerate(got)) >= 7


def test_top_k_scores_are_sorted_probabilities(artifacts, mnist):
    from edgekit.runtime.tasks import TaskOptions

    with Predictor(artifacts[("tflite", "int8")], options=TaskOptions(top_k=10)) as p:
        results = p(mnist.heldout.x[0]).results
    scores = [r.score for r in results]
    assert len(results) == 10 and scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=0.05)
    assert json.loads(json.dumps([r.to_dict() for r in results]))[0]["label"] == results[0].label


def test_backends_open_only_real_models(tmp_path, artifacts):
    fake = tmp_path / "notes.tflite"
    fake.write_text("this is not a model")
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        Predictor(fake)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(artifacts[("onnx", "fp32")].read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        Predictor(cut)
    with pytest.raises(ModelFileError, match="does not exist"):
        Predictor(tmp_path / "missing.onnx")


@pytest.mark.runtime_only
def test_sources_say_what_is_wrong(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "nope.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images in"):
        open_source(str(empty))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(SourceError, match="not an image OpenCV can decode"):
        open_source(str(bad))
    with pytest.raises(SourceError, match="no camera at index 7; cameras found: .*try --source video.mp4"):
        open_source("7")


def test_tflite_card_reader_needs_only_flatbuffers(artifacts):
    from edgekit.card import CARD_KEY
    from edgekit.runtime.files.tflite import read_tflite_metadata

    meta = read_tflite_metadata(artifacts[("tflite", "int8")].read_bytes())
    assert CARD_KEY in meta and json.loads(meta[CARD_KEY])["quantization"] == "int8"
    assert "min_runtime_version" in meta  # the converter's own entries survive the embedding
    cut = artifacts[("tflite", "int8")].read_bytes()[:20_000]
    with pytest.raises(ModelFileError, match="damaged TFLite"):
        read_tflite_metadata(cut)


@pytest.mark.runtime_only
def test_preprocessing_matches_training(mnist):
    from edgekit.models.recipes.mnist import MNIST_PIXELS
    from edgekit.runtime.features import model_inputs
    from edgekit.runtime.preprocess import ImageSpec, normalize, prepare_image

    spec = ImageSpec.from_dict(MNIST_PIXELS)
    train_side = model_inputs(MNIST_PIXELS, (28, 28, 1), mnist.heldout.head(5))
    device_side = np.stack([normalize(prepare_image(x, spec), spec) for x in mnist.heldout.x[:5]])
    assert np.array_equal(train_side, device_side)
