"""The `detector` recipe end to end: YOLO labels in, the grid encoding and its exact inverse,
mAP@0.5 on hand-made cases, a tiny real training run exported to TFLite and ONNX and run by
`edgekit run`, and (slow) the bar on the generated scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import edgekit.models.recipes.detector  # noqa: F401  (registers the recipe and the "yolo" dataset)
from edgekit.cli import app
from edgekit.errors import DataError
from edgekit.models.step import CardLike
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.detection_formats.edgekit_grid import decode_grid, encode_grid, grid_postprocess
from edgekit.runtime.detection_metrics import (
    ImageDetections,
    average_precision,
    mean_average_precision,
    precision_recall,
)
from edgekit.runtime.scoring import evaluate_outputs

runner = CliRunner()
LABELS = ("circle", "square", "triangle", "digit")


def grid_card(labels=LABELS, size=160) -> CardLike:
    pixels = {"kind": "image", "size": [size, size], "channels": 3, "scale": 1 / 255, "offset": 0.0}
    return CardLike("detect", tuple(labels), {**pixels, "resize": "stretch"}, grid_postprocess(16))


def write_image(path: Path, h: int = 32, w: int = 32, seed: int = 0) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# ---- the yolo loader ---------------------------------------------------------------------------


def yolo_folder(root: Path, n: int = 5, names: str = "a\nb\n") -> Path:
    for i in range(n):
        write_image(root / "images" / f"im{i}.png", seed=i)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"im{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.5\n")
    (root / "classes.txt").write_text(names)
    return root


@pytest.mark.runtime_only
def test_yolo_loader_holds_out_a_fixed_fifth_and_keeps_the_rows(tmp_path):
    ds = load_dataset("yolo", str(yolo_folder(tmp_path / "set", n=10)))
    assert ds.labels == ("a", "b") and len(ds.train) == 8 and len(ds.heldout) == 2
    assert ds.train.y.dtype == object and ds.train.y[0].dtype == np.float32
    assert all(r.shape == (1, 5) for r in ds.train.y)
    again = load_dataset("yolo", str(tmp_path / "set"))
    assert np.array_equal(again.heldout.x, ds.heldout.x)


@pytest.mark.runtime_only
def test_yolo_loader_reads_labels_beside_images_and_ultralytics_splits_and_yaml_names(tmp_path):
    same = tmp_path / "same"
    for i in range(3):
        write_image(same / f"p{i}.jpg", seed=i)
        (same / f"p{i}.txt").write_text("1 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n" if i else "")
    (same / "data.yaml").write_text("path: .\nnames:\n  0: person\n  1: car  # vehicles\n")
    ds = load_dataset("yolo", str(same))
    assert ds.labels == ("person", "car") and len(ds.train) + len(ds.heldout) == 3
    assert sorted(len(r) for r in [*ds.train.y, *ds.heldout.y]) == [0, 2, 2]

    ultra = tmp_path / "ultra"
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            write_image(ultra / "images" / split / f"{i}.png", h=24 + 8 * i, seed=i)  # mixed sizes
            (ultra / "labels" / split).mkdir(parents=True, exist_ok=True)
            (ultra / "labels" / split / f"{i}.txt").write_text("2 0.5 0.5 0.5 0.5\n")
    (ultra / "data.yaml").write_text("names: [cat, dog, 'bird']\n")
    ds = load_dataset("yolo", str(ultra))
    assert ds.labels == ("cat", "dog", "bird") and (len(ds.train), len(ds.heldout)) == (3, 2)
    assert ds.train.x.shape[1:] == ds.heldout.x.shape[1:]  # stretched to one size


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("5 0.5 0.5 0.2 0.2", r"im1.txt line 2 has class 5, outside the 2 classes"),
        ("1 0.5 0.5 0.2", r"im1.txt line 2 is '1 0.5 0.5 0.2': a YOLO label line is 'class cx cy w h'"),
        ("cat 0.5 0.5 0.2 0.2", r"im1.txt line 2 is 'cat 0.5 0.5 0.2 0.2'"),
        ("1 1.5 0.5 0.2 0.2", r"im1.txt line 2 has a box .* outside the image"),
    ],
)
@pytest.mark.runtime_only
def test_a_bad_label_line_is_one_sentence_naming_file_and_line(tmp_path, line, message):
    root = yolo_folder(tmp_path / "set")
    (root / "labels" / "im1.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(DataError, match=message):
        load_dataset("yolo", str(root))


@pytest.mark.runtime_only
def test_corrupt_images_are_skipped_and_counted_and_empty_folders_say_the_layout(tmp_path):
    root = yolo_folder(tmp_path / "set")
    (root / "images" / "broken.png").write_bytes(b"not a png")
    ds = load_dataset("yolo", str(root))
    assert ds.skipped == 1 and "1 unreadable image(s) skipped" in ds.description
    assert len(ds.train) + len(ds.heldout) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty: give a folder with images/ and labels/"):
        load_dataset("yolo", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset("yolo", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="needs --data: .* `edgekit data make scenes --out scenes`"):
        load_dataset("yolo")
    result = runner.invoke(
        app, ["train", "detector", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output


# ---- the grid encoding -------------------------------------------------------------------------

ROWS = np.array(
    [
        [0, 0.10, 0.20, 0.15, 0.30],
        [3, 0.55, 0.55, 0.40, 0.25],
        [1, 0.999, 0.0, 0.30, 0.20],  # centre on the image's edge: the last / first cell
        [2, 0.35, 0.81, 0.05, 0.10],
    ],
    np.float32,
)


def corners(rows: np.ndarray) -> np.ndarray:
    r = rows.astype(np.float64)
    return np.stack(
        [r[:, 1] - r[:, 3] / 2, r[:, 2] - r[:, 4] / 2, r[:, 1] + r[:, 3] / 2, r[:, 2] + r[:, 4] / 2], 1
    )


@pytest.mark.runtime_only
def test_grid_targets_decode_back_to_the_boxes_exactly():
    target = encode_grid(ROWS, (10, 10), len(LABELS))
    assert target.shape == (10, 10, 9) and target[..., 0].sum() == 4
    assert target[2, 1, 0] == 1 and target[2, 1, 5] == 1  # class 0 centred in row 2, column 1
    boxes, scores, classes = decode_grid(target, conf=0.5)
    order = np.argsort(classes)
    np.testing.assert_array_equal(classes[order], [0, 1, 2, 3])
    np.testing.assert_allclose(boxes[order], corners(ROWS[np.argsort(ROWS[:, 0])]), atol=1e-6)
    assert (scores == 1).all()


@pytest.mark.runtime_only
def test_two_objects_in_one_cell_keep_the_larger():
    rows = np.array([[0, 0.52, 0.52, 0.1, 0.1], [1, 0.54, 0.54, 0.3, 0.3]], np.float32)
    boxes, _, classes = decode_grid(encode_grid(rows, (10, 10), 2), conf=0.5)
    assert classes.tolist() == [1]
    np.testing.assert_allclose(boxes[0], corners(rows[1:])[0], atol=1e-6)


@pytest.mark.runtime_only
def test_the_detect_task_maps_grid_boxes_onto_the_original_frame():
    from edgekit.card import ModelCard, TensorSpec
    from edgekit.runtime.backends import TensorInfo
    from edgekit.runtime.tasks import TaskOptions
    from edgekit.runtime.tasks.detect import Detect

    c = grid_card()
    card = ModelCard(
        "detect",
        LABELS,
        TensorSpec("image", (None, 160, 160, 3), layout="NHWC"),
        TensorSpec("grid", (None, 10, 10, 9), layout="NHWC"),
        preprocess=c.preprocess,
        postprocess=c.postprocess,
    )
    task = Detect(
        card,
        [TensorInfo("image", (1, 160, 160, 3), np.dtype(np.float32))],
        [TensorInfo("grid", (1, 10, 10, 9), np.dtype(np.float32))],
        TaskOptions(),
    )
    frame = np.zeros((240, 320, 3), np.uint8)  # stretched to 160x160, then back
    task.preprocess(frame)
    results = task.postprocess([encode_grid(ROWS, (10, 10), 4)[None]])
    got = {d.label: d.box for d in results}
    for row in ROWS:
        want = corners(row[None])[0] * (320, 240, 320, 240)
        want = np.clip(want, 0, [320, 240, 320, 240])
        np.testing.assert_allclose(got[LABELS[int(row[0])]], want, atol=1e-3)


# ---- mAP@0.5 -----------------------------------------------------------------------------------


def dets(boxes, scores, classes) -> ImageDetections:
    return ImageDetections(
        np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float), np.asarray(classes)
    )


GT_A = np.array([[0, 0.25, 0.25, 0.2, 0.2]], np.float32)  # corners 0.15-0.35
HIT_A = [0.15, 0.15, 0.35, 0.35]
MISS = [0.6, 0.6, 0.9, 0.9]


@pytest.mark.runtime_only
def test_map_of_perfect_predictions_is_one():
    m, per_class = mean_average_precision([dets([HIT_A], [0.9], [0])], [GT_A], 2)
    assert m == 1.0 and per_class == {0: 1.0}  # class 1 has no ground truth: not averaged


@pytest.mark.runtime_only
def test_a_false_positive_ranked_first_halves_the_precision_at_full_recall():
    # ranked: FP (0.9), TP (0.8): precision 0 then 1/2 at recall 1 -> AP 0.5
    m, _ = mean_average_precision([dets([MISS, HIT_A], [0.9, 0.8], [0, 0])], [GT_A], 1)
    assert m == pytest.approx(0.5)
    # ranked the other way the false positive costs nothing
    m, _ = mean_average_precision([dets([MISS, HIT_A], [0.7, 0.8], [0, 0])], [GT_A], 1)
    assert m == pytest.approx(1.0)


@pytest.mark.runtime_only
def test_a_missed_object_caps_recall():
    gts = [GT_A, np.array([[0, 0.7, 0.7, 0.2, 0.2]], np.float32)]
    m, _ = mean_average_precision([dets([HIT_A], [0.9], [0]), dets([], [], [])], gts, 1)
    assert m == pytest.approx(0.5)
    assert precision_recall([dets([HIT_A], [0.9], [0]), dets([], [], [])], gts, 1, conf=0.5) == (1.0, 0.5)


@pytest.mark.runtime_only
def test_two_classes_are_averaged_and_a_wrong_class_or_a_double_hit_is_a_false_positive():
    gt = np.array([[0, 0.25, 0.25, 0.2, 0.2], [1, 0.75, 0.75, 0.2, 0.2]], np.float32)
    hit_b = [0.65, 0.65, 0.85, 0.85]
    # class 0: a hit (0.9), then a box on class 1's object labelled 0 (0.8): a false positive of
    # class 0 ranked after its only truth was found, so AP 1.0; class 1 found at 0.5: AP 1.0
    pred = dets([HIT_A, hit_b, hit_b], [0.9, 0.8, 0.5], [0, 0, 1])
    m, per_class = mean_average_precision([pred], [gt], 2)
    assert per_class == {0: 1.0, 1: 1.0} and m == 1.0
    # a second box on an object already found is a false positive, ranked above the hit on class 1
    pred = dets([HIT_A, HIT_A, MISS, hit_b], [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1])
    m, per_class = mean_average_precision([pred], [gt], 2)
    assert per_class[0] == 1.0 and per_class[1] == pytest.approx(0.5) and m == pytest.approx(0.75)
    assert precision_recall([pred], [gt], 2, conf=0.65) == (pytest.approx(1 / 3), 0.5)
    # a box covering a bit more than half the object (IoU 0.51) is a hit, a bit less (0.49) a miss
    assert mean_average_precision([dets([[0.15, 0.15, 0.252, 0.35]], [1], [0])], [GT_A], 1)[0] == 1.0
    assert mean_average_precision([dets([[0.15, 0.15, 0.248, 0.35]], [1], [0])], [GT_A], 1)[0] == 0.0


@pytest.mark.runtime_only
def test_average_precision_interpolates_over_all_points():
    # TP, FP, TP of 3 truths: precision envelope 1 to recall 1/3, 2/3 to recall 2/3 -> (1 + 2/3) / 3
    assert average_precision(np.array([True, False, True]), 3) == pytest.approx((1 + 2 / 3) / 3)


@pytest.mark.runtime_only
def test_evaluate_outputs_decodes_raw_grid_outputs_of_a_batch():
    ys = np.empty(3, dtype=object)
    ys[0], ys[1], ys[2] = ROWS, ROWS[:2], np.zeros((0, 5), np.float32)
    card = grid_card()
    perfect = np.stack([encode_grid(r, (10, 10), 4) for r in ys])
    scores = evaluate_outputs(card, [perfect], ys)
    assert list(scores) == ["map50", "precision", "recall"]
    assert scores == {"map50": 1.0, "precision": 1.0, "recall": 1.0}
    missed = perfect.copy()
    missed[1] = 0  # the second image's two objects are not found
    scores = evaluate_outputs(card, [missed], ys)
    assert scores["recall"] == pytest.approx(4 / 6) and scores["precision"] == 1.0
    assert scores["map50"] == pytest.approx(np.mean([1.0, 0.5, 1.0, 0.5]))  # classes 0 and 3 half found


# ---- a tiny detector: train, export, run ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny detector trained for one epoch on 40 generated scenes (files made by `data make`)."""
    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train
    from edgekit.runtime.datasets.synth import make

    root = tmp_path_factory.mktemp("tiny-detector")
    make("scenes", root / "scenes", count=40, seed=1)
    train(
        "detector",
        root / "run",
        data=str(root / "scenes"),
        epochs=1,
        batch_size=8,
        quiet=True,
        hparams=dict(get_recipe("detector").tiny),
    )
    return root


def test_tiny_detector_trains_and_writes_a_grid_card(tiny_run):
    from edgekit.card import ModelCard
    from edgekit.tfutil import import_tf

    card = ModelCard.load(tiny_run / "run" / "card.json")
    assert card.task == "detect" and card.labels == LABELS
    assert card.preprocess["size"] == [64, 64] and list(card.input.shape) == [None, 64, 64, 3]
    assert list(card.output.shape) == [None, 4, 4, 9]
    pp = card.postprocess
    assert pp["format"] == "edgekit-grid" and pp["stride"] == 16 and pp["conf"] == 0.25
    assert set(card.metrics) >= {"heldout_map50", "heldout_precision", "heldout_recall", "heldout_loss"}
    assert 0.0 <= card.metrics["heldout_map50"] <= 1.0
    _, keras = import_tf()
    model = keras.saving.load_model(tiny_run / "run" / "model.keras", compile=False)
    assert model.outputs[0].shape[1:] == (4, 4, 9)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_edgekit_export_takes_the_tiny_detector(tiny_run, fmt):
    model_path = tiny_run / "run" / "model.keras"
    out = tiny_run / f"exported.{fmt}"
    result = runner.invoke(app, ["export", str(model_path), "--to", fmt, "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert out.exists()


@pytest.fixture(scope="module")
def converted(tiny_run) -> dict[str, Path]:
    """fp32 and int8 TFLite and fp32 ONNX of the tiny detector, by the exporters' own convert and
    embed (the card inside), without the parity step that `edgekit export` adds."""
    from edgekit.export.api import plan_export
    from edgekit.export.base import get_exporter
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.files import read_card
    from edgekit.runtime.files.keras import load_keras_model

    model_path = tiny_run / "run" / "model.keras"
    card = read_card(model_path)
    model = load_keras_model(model_path)
    calib = card_inputs(card, load_dataset("yolo", str(tiny_run / "scenes")).train)
    files = {}
    for fmt, q in (("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32")):
        opts = plan_export(model_path, fmt, q, out=tiny_run / f"model_{q}.{fmt}", force=True)
        exporter = get_exporter(fmt)
        raw = exporter.convert(model, card, opts, calib)
        opts.out.write_bytes(exporter.embed(raw, card.replace(format=exporter.format, quantization=q)))
        files[f"{fmt}-{q}"] = opts.out
    return files


@pytest.mark.parametrize("artifact", ["tflite-fp32", "tflite-int8", "onnx-fp32"])
def test_edgekit_run_gives_the_detectors_boxes_on_the_frame(tiny_run, converted, artifact):
    import cv2

    from edgekit.card import ModelCard
    from edgekit.runtime.datasets import Split
    from edgekit.runtime.features import card_inputs
    from edgekit.tfutil import import_tf

    scene = cv2.imread(str(sorted((tiny_run / "scenes" / "test" / "images").glob("*.png"))[0]))
    source = tiny_run / "scene.png"
    cv2.imwrite(str(source), scene)
    # --conf 0.1: a model trained for one epoch scores low, but its boxes must still come through
    result = runner.invoke(
        app, ["run", str(converted[artifact]), "--source", str(source), "--json", "--conf", "0.1"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (record,) = [r for r in lines if "results" in r]  # then a summary line
    got = record["results"]
    assert got and all(r["label"] in LABELS for r in got)
    if artifact.endswith("int8"):
        return  # int8 moves scores by a quantization step: the boxes are checked on the float files
    # the same boxes as decoding the Keras model's own output on the same pixels
    card = ModelCard.load(tiny_run / "run" / "card.json")
    _, keras = import_tf()
    model = keras.saving.load_model(tiny_run / "run" / "model.keras", compile=False)
    x = card_inputs(card, Split(scene[None], np.zeros(1)))
    boxes, scores, _ = decode_grid(model.predict(x, verbose=0)[0], conf=0.1)
    want = np.clip(boxes * 160, 0, 160)  # the scene is 160x160, the model 64x64: stretched back
    assert len(got) == len(want)
    np.testing.assert_allclose([r["box"] for r in got], want, atol=0.05)
    np.testing.assert_allclose([r["score"] for r in got], scores, atol=1e-4)


def test_the_runtime_feeds_the_detector_the_pixels_training_did(tiny_run):
    import cv2

    from edgekit.card import ModelCard
    from edgekit.runtime.backends import TensorInfo
    from edgekit.runtime.datasets import Split
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.tasks import TaskOptions
    from edgekit.runtime.tasks.detect import Detect

    card = ModelCard.load(tiny_run / "run" / "card.json")
    task = Detect(
        card,
        [TensorInfo("image", (1, 64, 64, 3), np.dtype(np.float32))],
        [TensorInfo("grid", (1, 4, 4, 9), np.dtype(np.float32))],
        TaskOptions(),
    )
    scene = cv2.imread(str(sorted((tiny_run / "scenes" / "test" / "images").glob("*.png"))[0]))
    for frame in (scene, cv2.resize(scene, (300, 200)), scene[:50, :40]):  # shrunk, stretched, enlarged
        (fed,) = task.preprocess(frame)
        np.testing.assert_array_equal(fed, card_inputs(card, Split(frame[None], np.zeros(1))))


@pytest.mark.slow
def test_detector_reaches_its_bar_on_the_generated_scenes(tmp_path):
    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train

    result = train("detector", tmp_path, data="generated", quiet=True)
    m = result.card.metrics
    print(
        f"detector: held-out mAP@0.5 {m['heldout_map50']:.4f} (precision {m['heldout_precision']:.3f}, "
        f"recall {m['heldout_recall']:.3f}) on {result.card.dataset['heldout']} scenes in {result.seconds:.1f}s"
    )
    assert m["heldout_map50"] >= get_recipe("detector").evaluation.bar
