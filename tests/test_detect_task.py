"""The detect task end to end: the vendored MediaPipe BlazeFace through `edgekit run`, YOLO graphs
built here and run by onnxruntime, and annotated output saved as images, folders and video."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video, run_python
from tensor_fixtures import onnx_model_bytes
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.labels import COCO_CLASSES
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.tasks import TaskOptions

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

runner = CliRunner()
ASSETS = files("edgekit.runtime") / "assets"
SHORT_RANGE = Path(str(ASSETS / "face_detection_short_range.tflite"))
FULL_RANGE = Path(str(ASSETS / "face_detection_full_range.tflite"))


def invoke(*args):
    return runner.invoke(app, ["run", *(str(a) for a in args)], catch_exceptions=False)


def json_lines(result) -> list[dict]:
    """The per-input records (the last line, {"summary": ...}, is the run's summary)."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"source"')]


def write_photo(path: Path, name: str) -> np.ndarray:
    """One of scikit-image's photographs (RGB) written as OpenCV reads it (BGR); returns the pixels."""
    import cv2

    skimage_data = pytest.importorskip("skimage.data")
    bgr = cv2.cvtColor(getattr(skimage_data, name)(), cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), bgr)
    return bgr


def test_the_detect_task_and_inferred_cards_pull_in_no_tensorflow():
    proc = run_python(
        "import sys\n"
        "import edgekit.runtime.tasks.detect, edgekit.runtime.inferred_cards, edgekit.runtime.sinks\n"
        "print([m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- BlazeFace through `edgekit run` -----------------------------------------------------------


def test_run_finds_the_astronauts_face_and_saves_it_drawn(tmp_path):
    import cv2

    photo = write_photo(tmp_path / "astronaut.png", "astronaut")
    out = tmp_path / "out.jpg"
    result = invoke(SHORT_RANGE, "--source", tmp_path / "astronaut.png", "--save", out, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result)
    (face,) = record["results"]
    assert face["label"] == "face" and face["class_id"] == 0
    assert face["score"] == pytest.approx(0.921, abs=0.01)
    x1, y1, x2, y2 = face["box"]
    assert 175 < x1 < 185 and 265 < x2 < 280 and 70 < y1 < 90 and 165 < y2 < 180
    assert len(face["keypoints"]) == 6
    assert all(x1 - 5 < x < x2 + 5 and y1 < y < y2 for x, y in face["keypoints"])

    saved = cv2.imread(str(out))
    assert saved is not None and saved.shape == photo.shape
    diff = np.abs(saved.astype(int) - photo).max(axis=2)
    bx1, by1, bx2, by2 = (round(v) for v in face["box"])
    assert diff[by1 : by2 + 1, bx1 - 1 : bx1 + 2].mean() > 60  # the box's left edge is drawn
    assert diff[320:, :].mean() < 8  # below the face only JPEG noise
    assert not list(tmp_path.glob(".*part*"))  # the atomic write left no temporary file


def test_full_range_model_finds_no_face_on_the_cat(tmp_path):
    import cv2

    photo = write_photo(tmp_path / "chelsea.png", "chelsea")
    out = tmp_path / "cat.png"
    result = invoke(FULL_RANGE, "--source", tmp_path / "chelsea.png", "--save", out, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result)
    assert record["results"] == []
    assert (cv2.imread(str(out)) == photo).all()  # nothing to draw: a lossless copy


def test_conf_overrides_the_cards_threshold(tmp_path):
    write_photo(tmp_path / "astronaut.png", "astronaut")
    result = invoke(SHORT_RANGE, "--source", tmp_path / "astronaut.png", "--conf", "0.95")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{tmp_path / 'astronaut.png'}: nothing"


# --- YOLO through a real ONNX graph -------------------------------------------------------------

# a 200x100 picture letterboxed into 96x96: scale 0.48, 24 rows of padding above and below
PICTURE_HW, INPUT, SCALE, PAD = (100, 200), 96, 0.48, (0, 24)
ANCHORS = 12 * 12 + 6 * 6 + 3 * 3  # strides 8, 16 and 32 on a 96x96 input
OBJECTS = np.array(
    [  # x1, y1, x2, y2 in the picture; score; COCO class
        [20, 10, 70, 90, 0.9, 0],  # person
        [22, 10, 72, 90, 0.8, 0],  # the same person again: suppressed
        [20, 10, 70, 90, 0.7, 2],  # a car in the same place: another class, kept
        [120, 20, 190, 80, 0.6, 16],  # dog
        [100, 50, 140, 95, 0.3, 1],  # bicycle: kept at the default 0.25, not at --conf 0.5
    ]
)


def make_yolov8(path: Path, num_classes: int = 80, n: int = ANCHORS) -> Path:
    """A YOLOv8-layout ONNX model: (1, 3, 96, 96) in, (1, 4+nc, n) out holding OBJECTS and noise.

    The rows are a constant; adding 0 x mean(image) makes onnxruntime take (and check) the input."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    rng = np.random.default_rng(0)
    rows = np.zeros((n, 4 + num_classes), np.float32)
    rows[:, :2] = rng.uniform(0, INPUT, (n, 2))
    rows[:, 2:4] = rng.uniform(2, 20, (n, 2))
    rows[:, 4:] = rng.uniform(0, 0.05, (n, num_classes))
    b = OBJECTS[:, :4] * SCALE + np.array(PAD * 2)
    rows[: len(b), :4] = np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    rows[: len(b), 4:] = 0.01
    rows[np.arange(len(b)), 4 + (OBJECTS[:, 5].astype(int) % num_classes)] = OBJECTS[:, 4]
    rows = rows[rng.permutation(n)]
    t = onnx.TensorProto.FLOAT
    graph = h.make_graph(
        [
            h.make_node("Constant", [], ["rows"], value=onnx.numpy_helper.from_array(rows[None], "rows")),
            h.make_node("Transpose", ["rows"], ["channels_first"], perm=[0, 2, 1]),
            h.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
            h.make_node("Constant", [], ["zero"], value=h.make_tensor("zero", t, [], [0.0])),
            h.make_node("Mul", ["mean", "zero"], ["nothing"]),
            h.make_node("Add", ["channels_first", "nothing"], ["output0"]),
        ],
        "yolov8",
        [h.make_tensor_value_info("images", t, [1, 3, INPUT, INPUT])],
        [h.make_tensor_value_info("output0", t, [1, 4 + num_classes, n])],
    )
    path.write_bytes(onnx_model_bytes(graph))
    return path


@pytest.fixture(scope="module")
def yolo(tmp_path_factory) -> Path:
    return make_yolov8(tmp_path_factory.mktemp("yolo") / "yolov8n.onnx")


def picture(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*PICTURE_HW, 3), dtype=np.uint8)


def summary(detections) -> list[tuple]:
    return [(d.label, d.class_id, round(d.score, 3), *np.round(d.box, 1)) for d in detections]


def test_yolov8_onnx_gets_an_inferred_card_and_boxes_on_the_original_picture(yolo):
    with Predictor(yolo) as p:
        assert p.card.task == "detect" and p.card.postprocess["format"] == "yolov8"
        assert p.card.labels == COCO_CLASSES and len(COCO_CLASSES) == 80
        assert p.card.preprocess["size"] == [INPUT, INPUT] and p.card.preprocess["pad"] == 114
        detections = p(picture()).results
    assert summary(detections) == [
        ("person", 0, 0.9, 20, 10, 70, 90),
        ("car", 2, 0.7, 20, 10, 70, 90),
        ("dog", 16, 0.6, 120, 20, 190, 80),
        ("bicycle", 1, 0.3, 100, 50, 140, 95),
    ]
    with Predictor(yolo, options=TaskOptions(conf=0.5, classes=(0, 16))) as p:
        assert [d.label for d in p(picture()).results] == ["person", "dog"]
    with Predictor(yolo, options=TaskOptions(iou=0.99)) as p:  # the duplicate person survives
        assert [d.label for d in p(picture()).results].count("person") == 2


def test_yolo_with_other_class_counts_gets_numeric_labels(tmp_path):
    with Predictor(make_yolov8(tmp_path / "three.onnx", num_classes=3)) as p:
        assert p.card.labels == ("0", "1", "2")
        assert [d.label for d in p(picture()).results][:2] == ["0", "2"]


def test_run_conf_on_a_yolo_model(tmp_path, yolo):
    import cv2

    cv2.imwrite(str(tmp_path / "street.png"), picture())
    result = invoke(yolo, "--source", tmp_path / "street.png", "--json", "--conf", "0.5")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result)
    assert [r["label"] for r in record["results"]] == ["person", "car", "dog"]
    assert record["results"][2]["box"] == pytest.approx([120, 20, 190, 80], abs=0.1)


# --- --save: folders, video, overwriting ---------------------------------------------------------


def test_save_a_folder_of_images_to_a_folder(tmp_path, yolo):
    import cv2

    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        cv2.imwrite(str(inputs / f"frame_{i}.png"), picture(i))
    out = tmp_path / "annotated"
    result = invoke(yolo, "--source", inputs, "--save", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["frame_0.png", "frame_1.png", "frame_2.png"]
    for i in range(3):
        saved = cv2.imread(str(out / f"frame_{i}.png"))
        assert saved.shape == (*PICTURE_HW, 3)
        changed = (saved != picture(i)).any(axis=2)
        assert changed[10, 20:70].all() and not changed[0:8, 80:115].any()  # the person's box only
    # a second run into the same folder refuses to replace what the first wrote
    again = invoke(yolo, "--source", inputs, "--save", out)
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert invoke(yolo, "--source", inputs, "--save", out, "--force").exit_code == 0
    # one image file cannot hold three
    many = invoke(yolo, "--source", inputs, "--save", tmp_path / "one.png")
    assert many.exit_code == 1 and "not 3 images: save to a folder" in many.stderr


def test_save_an_annotated_video(tmp_path, yolo):
    import cv2

    video = make_video(tmp_path / "clip.avi", [picture(i) for i in range(5)], fps=7)
    out = tmp_path / "annotated.avi"
    result = invoke(yolo, "--source", video, "--save", out)
    assert result.exit_code == 0, result.output
    cap = cv2.VideoCapture(str(out))
    try:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(7)  # the source's rate
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    assert len(frames) == 5 and frames[0].shape == (*PICTURE_HW, 3)
    # the person's box is drawn in the palette's first colour (BGR 56, 56, 255), through MJPEG
    assert frames[0][9:12, 25:65, 2].mean() > 200 and frames[0][9:12, 25:65, 0].mean() < 120
    assert not list(tmp_path.glob(".*part*"))


def test_save_refuses_to_overwrite_without_force(tmp_path):
    write_photo(tmp_path / "astronaut.png", "astronaut")
    out = tmp_path / "out.jpg"
    out.write_bytes(b"keep me")
    result = invoke(SHORT_RANGE, "--source", tmp_path / "astronaut.png", "--save", out)
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_bytes() == b"keep me"
    forced = invoke(SHORT_RANGE, "--source", tmp_path / "astronaut.png", "--save", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes()[:2] == b"\xff\xd8"  # now a JPEG
    # a video refuses the same way, before any frame is read
    video = make_video(tmp_path / "clip.avi", [picture(0)] * 2)
    (tmp_path / "taken.avi").write_bytes(b"keep me")
    refused = invoke(SHORT_RANGE, "--source", video, "--save", tmp_path / "taken.avi")
    assert refused.exit_code == 1 and (tmp_path / "taken.avi").read_bytes() == b"keep me"
