"""Darknet -> Keras -> int8 TFLite and ONNX from the command line (issue 15): `edgekit import
darknet`, then `edgekit export model.keras --data photos/` on plain images (no labels): calibrated on
them, validated by the agreement of decoded boxes with Keras, and the files give OpenCV's boxes."""

from __future__ import annotations

import json

import numpy as np
from said import assert_names_what_it_wrote, files_under
from test_darknet import MODELS, picture, run_json, write_weights
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.files import read_card

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def iou(a, b) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod((rb - lt).clip(0)))
    union = float(np.prod(np.subtract(a[2:], a[:2])) + np.prod(np.subtract(b[2:], b[:2]))) - inter
    return inter / union if union > 0 else 0.0


def matched(got: list[dict], want: list[dict]) -> float:
    """The fraction of `want`'s boxes that a box of `got` of the same class covers at IoU >= 0.5."""

    def covered(w: dict) -> bool:
        box = np.array(w["box"])
        return any(g["class_id"] == w["class_id"] and iou(np.array(g["box"]), box) >= 0.5 for g in got)

    hits = sum(covered(w) for w in want)
    return hits / len(want)


def test_darknet_to_int8_tflite_and_onnx_from_the_cli(tmp_path):
    import cv2

    text, conv_inputs, version = MODELS["v4tiny"]
    cfg = tmp_path / "yolov4-tiny.cfg"
    cfg.write_text(text)
    write_weights(text, conv_inputs, cfg.with_suffix(".weights"), version)
    photos = tmp_path / "photos"
    photos.mkdir()
    for s in range(12):
        cv2.imwrite(str(photos / f"p{s}.png"), picture(s))

    before = files_under(tmp_path)
    result = cli("import", "darknet", cfg, cfg.with_suffix(".weights"), "--out", tmp_path / "keras")
    assert result.exit_code == 0, result.output
    assert_names_what_it_wrote(tmp_path, before, result)
    model = tmp_path / "keras" / "model.keras"
    card_path = model.with_name("card.json")
    card = json.loads(card_path.read_text())
    card["postprocess"]["conf"] = 0.3  # random weights score low: the card beside the model wins
    card_path.write_text(json.dumps(card))

    out = tmp_path / "exports"
    for fmt in ("tflite", "onnx"):
        result = cli("export", model, "--to", fmt, "--quantize", "int8", "--data", photos, "--out", out)
        assert result.exit_code == 0, result.output
        assert "box agreement" in result.output and "on 12 samples of --data" in result.output
    parity = read_card(out / "model_int8.tflite").parity
    assert parity["boxes_keras"] > 0 and parity["box_agreement"] > 0.6

    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), picture(3))
    (want,) = run_json(cfg, "--source", frame, "--conf", "0.3")
    assert want["results"]
    for name in ("model_int8.tflite", "model_int8.onnx"):
        (got,) = run_json(out / name, "--source", frame, "--conf", "0.3")
        assert matched(got["results"], want["results"]) >= 0.6, (name, got["results"], want["results"])


def test_a_folder_without_images_is_one_sentence(tmp_path):
    text, conv_inputs, version = MODELS["v3tiny"]
    cfg = tmp_path / "y.cfg"
    cfg.write_text(text)
    write_weights(text, conv_inputs, cfg.with_suffix(".weights"), version)
    assert cli("import", "darknet", cfg, "--out", tmp_path / "k").exit_code == 0
    (tmp_path / "empty").mkdir()
    result = cli("export", tmp_path / "k" / "model.keras", "--to", "onnx", "--data", tmp_path / "empty")
    assert result.exit_code == 1 and "holds no images" in result.stderr
