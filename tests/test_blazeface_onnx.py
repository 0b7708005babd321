"""The vendored BlazeFace ONNX (four split heads) against the vendored short-range TFLite (two heads):
the same network, so onnxruntime and litert must agree output for output and face for face."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.backends import open_model
from edgekit.runtime.predictor import Predictor

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

ASSETS = files("edgekit.runtime") / "assets"
ONNX = Path(str(ASSETS / "face_detection_front_128x128_barracuda.onnx"))
TFLITE = Path(str(ASSETS / "face_detection_short_range.tflite"))
runner = CliRunner()


def photo(name: str) -> np.ndarray:
    """A scikit-image photograph as OpenCV would read it (BGR)."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(getattr(skimage_data, name)()[..., ::-1])


def test_the_onnx_file_is_vendored_with_its_licence():
    assert ONNX.stat().st_size == 442_005
    note = (ASSETS / "LICENSE-blazeface-barracuda-onnx.txt").read_text()
    assert ONNX.name in note and "Apache License, Version 2.0" in note


def test_concatenated_onnx_heads_equal_the_tflite_outputs():
    """Scores heads (512 + 384) and regressor heads, concatenated, are the TFLite's 896 rows."""
    pytest.importorskip("ai_edge_litert")
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)]
    with Predictor(TFLITE) as p:
        inputs.append(p.task.preprocess(photo("astronaut"))[0])
    with open_model(ONNX) as onnx, open_model(TFLITE) as tflite:
        assert [o.shape for o in onnx.outputs] == [(1, 512, 1), (1, 384, 1), (1, 512, 16), (1, 384, 16)]
        names = {o.shape[-1]: o.name for o in tflite.outputs}
        for x in inputs:
            split = onnx.run([x])
            whole = dict(zip([o.name for o in tflite.outputs], tflite.run([x])))
            scores = np.concatenate(split[:2], axis=1)
            regressors = np.concatenate(split[2:], axis=1)
            np.testing.assert_allclose(scores, whole[names[1]], atol=1e-3)
            scale = np.abs(whole[names[16]]).max()
            assert scale > 10  # offsets in input pixels: real values, not a dead graph
            np.testing.assert_allclose(regressors, whole[names[16]], atol=1e-5 * scale)


def test_the_onnx_card_is_inferred_as_the_tflite_one():
    with Predictor(ONNX) as onnx, Predictor(TFLITE) as tflite:
        assert onnx.session.backend == "onnxruntime"
        assert onnx.card.postprocess == tflite.card.postprocess
        assert onnx.card.preprocess == tflite.card.preprocess
        assert onnx.card.labels == ("face",) and onnx.card.recipe == "mediapipe:face_detection_short_range"


def test_run_finds_the_same_face_with_both_backends(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "astronaut.png"), photo("astronaut"))
    records = {}
    for model in (ONNX, TFLITE):
        result = runner.invoke(
            app,
            ["run", str(model), "--source", str(tmp_path / "astronaut.png"), "--json"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        (records[model.suffix],) = [
            json.loads(x) for x in result.stdout.splitlines() if x.startswith('{"source"')
        ]
    (face,) = records[".onnx"]["results"]
    (same,) = records[".tflite"]["results"]
    assert face["label"] == "face" and face["score"] == pytest.approx(0.921, abs=0.01)
    x1, y1, x2, y2 = face["box"]
    assert 175 < x1 < 185 and 265 < x2 < 280 and 70 < y1 < 90 and 165 < y2 < 180
    assert face["score"] == pytest.approx(same["score"], abs=1e-4)
    np.testing.assert_allclose(face["box"], same["box"], atol=0.05)
    np.testing.assert_allclose(face["keypoints"], same["keypoints"], atol=0.05)


def test_no_face_on_the_cat_with_either_backend():
    cat = photo("chelsea")
    for model in (ONNX, TFLITE):
        with Predictor(model) as p:
            assert p(cat).results == []
