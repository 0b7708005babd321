"""`edgekit evaluate --data FOLDER` gives mAP@0.5 for detectors that came from elsewhere (MediaPipe
BlazeFace, an Ultralytics YOLO): the detection format's batch decode (letterbox undone per image)
scores a YOLO-label folder. Labels written from the model's own per-frame results must score mAP 1;
the same labels moved off the objects must score (near) 0, so the number is not a constant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.predictor import Predictor

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

cv2 = pytest.importorskip("cv2")
ASSETS = Path(__file__).parent.parent / "runtime" / "assets"
FIXTURES = Path(__file__).parent / "fixtures" / "ultralytics"


def write_folder(
    root: Path, images: list[np.ndarray], rows: list[np.ndarray], classes: tuple[str, ...]
) -> Path:
    """A YOLO-label folder with train/ and test/ (so every test image is scored): each image as a
    PNG, its rows `class cx cy w h` (normalised) in labels/."""
    for part in ("train", "test"):
        (root / part / "images").mkdir(parents=True)
        (root / part / "labels").mkdir(parents=True)
    cv2.imwrite(str(root / "train" / "images" / "t.png"), images[0])
    (root / "train" / "labels" / "t.txt").write_text("")
    for i, (image, r) in enumerate(zip(images, rows, strict=True)):
        cv2.imwrite(str(root / "test" / "images" / f"{i}.png"), image)
        lines = [f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in r]
        (root / "test" / "labels" / f"{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def label_rows(detections, shape) -> np.ndarray:
    """Per-frame detections (pixels of the image) -> YOLO rows."""
    h, w = shape[:2]
    rows = [
        (d.class_id, (d.box[0] + d.box[2]) / 2 / w, (d.box[1] + d.box[3]) / 2 / h,
         (d.box[2] - d.box[0]) / w, (d.box[3] - d.box[1]) / h)
        for d in detections
    ]  # fmt: skip
    return np.array(rows, np.float64).reshape(-1, 5)


def evaluate(model: Path, folder: Path) -> dict:
    result = CliRunner().invoke(app, ["evaluate", str(model), "--data", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def moved(rows: np.ndarray) -> np.ndarray:
    """The same boxes half an image away: no prediction overlaps them."""
    out = rows.copy()
    out[:, 1] = (out[:, 1] + 0.5) % 1.0
    out[:, 2] = (out[:, 2] + 0.5) % 1.0
    return out


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    data = pytest.importorskip("skimage.data")
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return [astronaut, np.ascontiguousarray(astronaut[:, ::-1])]


@pytest.mark.parametrize(
    "model", ["face_detection_short_range.tflite", "face_detection_front_128x128_barracuda.onnx"]
)
def test_blazeface_is_scored_on_a_labelled_folder(tmp_path, faces, model):
    path = ASSETS / model
    with Predictor(path) as predictor:
        rows = [label_rows(predictor(im).results, im.shape) for im in faces]
        classes = predictor.card.labels
    assert all(len(r) == 1 for r in rows), "one face in each picture"
    got = evaluate(path, write_folder(tmp_path / "right", faces, rows, classes))
    assert got["task"] == "detect" and got["metrics"]["map50"] == pytest.approx(1.0)
    assert got["metrics"]["recall"] == pytest.approx(1.0)
    off = evaluate(path, write_folder(tmp_path / "off", faces, [moved(r) for r in rows], classes))
    assert off["metrics"]["map50"] < 0.05  # only stray low-score boxes (ranked down to 0.001) touch them


def test_an_ultralytics_yolo_is_scored_on_a_labelled_folder(tmp_path):
    """Letterboxed: the batch decode must undo each image's letterbox as the per-frame one does."""
    path = FIXTURES / "yolov8.onnx"
    image = cv2.imread(str(FIXTURES / "shapes.png"))
    images = [image, np.ascontiguousarray(image[::-1])]  # two pictures of the same size
    with Predictor(path) as predictor:
        found = [predictor(im).results for im in images]
        classes = predictor.card.labels
    # the boxes above the card's threshold, with their scores told apart (the random head ties many)
    rows = [label_rows(dets, im.shape) for dets, im in zip(found, images, strict=True)]
    assert sum(len(r) for r in rows) > 0, "the fixture finds boxes at the card's threshold"
    got = evaluate(path, write_folder(tmp_path / "right", images, rows, classes))
    assert got["metrics"]["recall"] == pytest.approx(1.0)
    assert got["metrics"]["map50"] > 0.9
    off = evaluate(path, write_folder(tmp_path / "off", images, [moved(r) for r in rows], classes))
    # the random head scatters low-score boxes everywhere, so a few land on the moved ones
    assert off["metrics"]["map50"] < 0.5


def test_a_card_with_no_dataset_and_no_data_says_to_pass_data():
    result = CliRunner().invoke(app, ["evaluate", str(ASSETS / "face_detection_short_range.tflite")])
    assert result.exit_code == 1 and "names no dataset: pass --data" in result.output
