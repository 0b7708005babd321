"""Segmentation: the masks loader, IoU/Dice, the U-Net recipe, its exports and the `segment` task,
on images and masks these tests draw with OpenCV (and, in the slow bar test, generated scenes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import run_python

from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks.segment import Mask, bounding_box, iou_dice

SEGMENT_CARD = SimpleNamespace(task="segment", postprocess={"activation": "sigmoid", "threshold": 0.5})


def draw_scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A textured dark background with one or two bright filled shapes: (BGR image, 0/255 mask)."""
    import cv2

    coarse = rng.integers(0, 90, (size // 8, size // 8, 3)).astype(np.uint8)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        colour = [int(v) for v in rng.integers(140, 256, 3)]
        if rng.random() < 0.5:
            centre = tuple(int(v) for v in rng.integers(size // 5, size - size // 5, 2))
            radius = int(rng.integers(size // 10, size // 4))
            cv2.circle(image, centre, radius, colour, -1)
            cv2.circle(mask, centre, radius, 255, -1)
        else:
            p = rng.integers(0, size - size // 4, 2)
            q = p + rng.integers(size // 6, size // 3, 2)
            cv2.rectangle(image, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), colour, -1)
            cv2.rectangle(mask, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 255, -1)
    return image, mask


def write_pairs(folder: Path, n: int, seed: int = 0, size: int = 64, mask_suffix: str = ".png") -> Path:
    """`n` drawn images in folder/images and their masks (same stem) in folder/masks."""
    import cv2

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        image, mask = draw_scene(rng, size)
        cv2.imwrite(str(folder / "images" / f"s{i:03d}.png"), image)
        cv2.imwrite(str(folder / "masks" / f"s{i:03d}{mask_suffix}"), mask)
    return folder


# ---- IoU and Dice ------------------------------------------------------------------------------


@pytest.mark.runtime_only
def test_iou_and_dice_match_hand_computed_cases():
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, 0:2, :] = True  # rows 0-1: 8 pixels
    b[0, 1:3, :] = True  # rows 1-2: 8 pixels; 4 shared, 12 in the union
    assert iou_dice(a, b) == pytest.approx((4 / 12, 8 / 16))
    assert iou_dice(a, a) == (1.0, 1.0)
    assert iou_dice(a, np.zeros_like(a)) == (0.0, 0.0)
    assert iou_dice(np.zeros_like(a), np.zeros_like(a)) == (1.0, 1.0)  # both empty: they agree
    # pooled over the batch: a perfect image (4 px) and a false alarm (4 px) -> 4 / 8, Dice 8 / 12
    p = np.zeros((2, 4, 4), bool)
    t = np.zeros((2, 4, 4), bool)
    p[0, :2, :2] = t[0, :2, :2] = True
    p[1, 2:, 2:] = True
    assert iou_dice(p, t) == pytest.approx((0.5, 8 / 12))
    with pytest.raises(DataError, match="differ in shape"):
        iou_dice(p, t[:, :2])


@pytest.mark.runtime_only
def test_segment_metrics_threshold_probabilities_and_resize_the_truth():
    probs = np.zeros((1, 4, 4, 1), np.float32)
    probs[0, 0:2, :, 0] = 0.9  # predicted: rows 0-1
    probs[0, 2, :, 0] = 0.4  # under the threshold
    truth = np.zeros((1, 8, 8), np.uint8)  # twice the output's size: resized by nearest
    truth[0, 2:6, :] = 1  # rows 1-2 at the output's size
    scores = evaluate_outputs(SEGMENT_CARD, [probs], truth)
    assert list(scores) == ["iou", "dice"]  # the headline first
    assert scores["iou"] == pytest.approx(4 / 12) and scores["dice"] == pytest.approx(0.5)
    strict = SimpleNamespace(task="segment", postprocess={"activation": "sigmoid", "threshold": 0.95})
    assert evaluate_outputs(strict, [probs], truth) == {"iou": 0.0, "dice": 0.0}
    # masks as 0/255 count the same as 0/1
    assert evaluate_outputs(SEGMENT_CARD, [probs], truth * 255) == scores


# ---- the masks loader --------------------------------------------------------------------------


@pytest.mark.runtime_only
def test_masks_loader_reads_pairs_and_holds_out_a_fixed_split(tmp_path):
    folder = write_pairs(tmp_path / "data", 10)
    ds = load_dataset("masks", str(folder))
    assert (len(ds.train), len(ds.heldout)) == (8, 2) and ds.labels == ("background", "foreground")
    assert ds.train.x.shape == (8, 64, 64, 3) and ds.train.x.dtype == np.uint8
    assert ds.train.y.shape == (8, 64, 64) and ds.train.y.dtype == np.uint8
    assert set(np.unique(ds.train.y)) == {0, 1} and ds.skipped == 0 and "warning" not in ds.description
    # each image's mask is the one with its stem: the drawn shapes are bright, the background dark
    for x, y in zip(ds.train.x, ds.train.y):
        gray = x.max(axis=2)
        assert gray[y == 1].min() >= 140 and gray[y == 0].max() < 140
    again = load_dataset("masks", str(folder))
    assert np.array_equal(again.heldout.x, ds.heldout.x), "the held-out split must not move"


@pytest.mark.runtime_only
def test_masks_loader_skips_and_counts_bad_files_and_resizes_odd_masks(tmp_path):
    import cv2

    folder = write_pairs(tmp_path / "data", 8)
    (folder / "masks" / "s000.png").unlink()  # an image with no mask
    (folder / "images" / "s001.png").write_bytes(b"not a png at all")  # a corrupt image
    (folder / "masks" / "s002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # a corrupt mask
    small = np.zeros((32, 32), np.uint8)
    small[8:16, 8:16] = 7  # any nonzero value is foreground
    cv2.imwrite(str(folder / "masks" / "s003.png"), small)  # a mask of another size than its image
    cv2.imwrite(str(folder / "images" / "extra.jpg"), np.zeros((64, 64, 3), np.uint8))
    ds = load_dataset("masks", str(folder))
    assert len(ds.train) + len(ds.heldout) == 5 and ds.skipped == 4
    text = ds.description
    assert "4 image(s) without a mask skipped" not in text  # corrupt and maskless are told apart
    assert "2 image(s) without a mask skipped (extra.jpg, s000.png)" in text
    assert "2 unreadable file(s) skipped (s001.png, s002.png)" in text
    assert "1 mask(s) of another size than their image resized to it (nearest; s003.png)" in text
    resized = [y for y in np.concatenate([ds.train.y, ds.heldout.y]) if y.sum() == 16 * 16]
    assert len(resized) == 1 and resized[0][16:32, 16:32].all()  # 8x8 at half size -> 16x16


@pytest.mark.runtime_only
def test_masks_loader_reads_both_train_test_layouts(tmp_path):
    import shutil

    for part, n in (("train", 6), ("test", 3)):
        write_pairs(tmp_path / "a" / part, n, seed=len(part))
        for sub in ("images", "masks"):  # YOLO style: images/train beside masks/train
            shutil.copytree(tmp_path / "a" / part / sub, tmp_path / "b" / sub / part)
    for root in (tmp_path / "a", tmp_path / "b"):
        ds = load_dataset("masks", str(root))
        assert (len(ds.train), len(ds.heldout)) == (6, 3) and "held out: its test part" in ds.description


@pytest.mark.runtime_only
def test_masks_loader_says_what_layout_it_wants(tmp_path):
    with pytest.raises(DataError, match=r"needs --data: a folder with images/ and masks/.*data make scenes"):
        load_dataset("masks")
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset("masks", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="has no images/ folder"):
        load_dataset("masks", str(tmp_path / "empty"))
    (tmp_path / "empty" / "images").mkdir()
    with pytest.raises(DataError, match="has no masks folder beside it"):
        load_dataset("masks", str(tmp_path / "empty"))
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_dataset("masks", str(tmp_path / "empty"))
    folder = write_pairs(tmp_path / "orphans", 3)
    for f in (folder / "masks").iterdir():
        f.rename(f.with_name("other_" + f.name))
    with pytest.raises(DataError, match=r"none of the images .* has a readable mask .*\(3 without a mask"):
        load_dataset("masks", str(folder))


@pytest.mark.runtime_only
def test_lossy_masks_take_their_bright_half(tmp_path):
    import cv2

    from edgekit.runtime.datasets.masks import read_mask

    mask = np.zeros((64, 64), np.uint8)
    cv2.circle(mask, (30, 33), 17, 255, -1)
    ok, buf = cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok and (cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)[mask == 0] > 0).any()  # JPEG rings
    path = tmp_path / "m.jpg"
    path.write_bytes(buf.tobytes())
    assert np.array_equal(read_mask(path), (mask > 0).astype(np.uint8))


# ---- the Mask result ---------------------------------------------------------------------------


@pytest.mark.runtime_only
def test_mask_result_is_a_compact_summary_with_box_and_rle():
    m = np.zeros((6, 8), bool)
    m[1:3, 2:5] = True  # 6 pixels, x 2..4, y 1..2
    result = Mask.from_mask(m)
    assert result.box == (2, 1, 5, 3) and result.area == 6 and result.fraction == pytest.approx(6 / 48)
    d = result.to_dict()
    assert d == {"label": "foreground", "fraction": 0.125, "area": 6, "box": [2, 1, 5, 3], "size": [6, 8]}
    assert json.loads(json.dumps(d)) == d and str(result) == "foreground 12.5% in [2, 1, 5, 3]"
    rle = result.to_dict(rle=True)["rle"]
    assert rle["size"] == [6, 8] and sum(rle["counts"]) == 48
    flat = np.concatenate([np.full(c, i % 2, bool) for i, c in enumerate(rle["counts"])])
    assert np.array_equal(flat.reshape(8, 6).T, m)  # column-major, background first (COCO)
    starts_on = np.ones((2, 2), bool)
    assert Mask.from_mask(starts_on).rle()["counts"] == [0, 4]
    empty = Mask.from_mask(np.zeros((4, 4), bool))
    assert empty.box is None and empty.to_dict()["box"] is None and bounding_box(empty.mask) is None


# ---- a tiny U-Net, trained on drawn shapes, exported and run -----------------------------------


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory) -> SimpleNamespace:
    """The recipe's tiny U-Net (32x32 gray, 4-64 filters) trained briefly on 200 drawn scenes."""
    from edgekit.models.train import train

    root = tmp_path_factory.mktemp("unet")
    data = write_pairs(root / "data", 200)
    result = train(
        "unet",
        root / "run",
        data=str(data),
        hparams=dict(get_recipe("unet").tiny),
        epochs=12,
        batch_size=16,
        quiet=True,
    )
    return SimpleNamespace(root=root, data=data, result=result, dataset=result.dataset)


def test_tiny_unet_learns_masks_well_above_a_trivial_baseline(tiny_unet):
    card, ds = tiny_unet.result.card, tiny_unet.dataset
    assert card.task == "segment" and card.output.shape == (None, 32, 32, 1)
    assert card.preprocess["size"] == [32, 32] and card.preprocess["channels"] == 1
    assert card.postprocess == {"activation": "sigmoid", "threshold": 0.5}
    # the trivial baselines: everything foreground scores the foreground fraction, nothing scores 0
    everything = evaluate_outputs(card, [np.ones((len(ds.heldout), 32, 32, 1), np.float32)], ds.heldout.y)
    iou = card.metrics["heldout_iou"]
    print(f"tiny unet: held-out IoU {iou:.3f} (all-foreground baseline {everything['iou']:.3f})")
    assert everything["iou"] < 0.3 and iou > 0.6 and card.metrics["heldout_dice"] > iou


@pytest.fixture(scope="module")
def unet_files(tiny_unet) -> dict[tuple[str, str], Path]:
    """The tiny U-Net converted by the export layer's converters (fp32 and int8), card embedded."""
    from edgekit.card import ModelCard
    from edgekit.export.base import ExportOptions, Quantization, get_exporter
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.files.keras import load_keras_model

    run = tiny_unet.root / "run"
    card = ModelCard.load(run / "card.json")
    model = load_keras_model(run / "model.keras")
    calib = card_inputs(card, tiny_unet.dataset.train.head(100))
    files = {}
    for fmt in ("tflite", "onnx"):
        exporter = get_exporter(fmt)
        for q in ("fp32", "int8"):
            out = run / f"model_{q}{exporter.suffix}"
            options = ExportOptions(format=fmt, quantization=Quantization(q), out=out)
            raw = exporter.convert(model, card, options, calib)
            out.write_bytes(exporter.embed(raw, card.replace(format=fmt, quantization=q)))
            files[fmt, q] = out
    return files


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_exported_unet_agrees_with_keras(unet_files, tiny_unet, fmt):
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.files.keras import load_keras_model
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.scoring import evaluate

    card, heldout = tiny_unet.result.card, tiny_unet.dataset.heldout
    reference = load_keras_model(tiny_unet.root / "run" / "model.keras").predict(
        card_inputs(card, heldout), verbose=0
    )
    keras_iou = evaluate_outputs(card, [reference], heldout.y)["iou"]
    with Predictor(unet_files[fmt, "fp32"]) as p:
        fp32 = evaluate(p, heldout.x, heldout.y)
    assert np.abs(fp32["outputs"][0] - reference).max() < 1e-4
    assert fp32["metrics"]["iou"] == pytest.approx(keras_iou, abs=1e-3)
    with Predictor(unet_files[fmt, "int8"]) as p:
        int8 = evaluate(p, heldout.x, heldout.y)
    print(f"{fmt}: keras IoU {keras_iou:.3f}, int8 IoU {int8['metrics']['iou']:.3f}")
    assert int8["outputs"][0].shape == reference.shape
    assert int8["metrics"]["iou"] > keras_iou - 0.15


def test_segment_task_preprocesses_frames_as_training_did(unet_files, tiny_unet):
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.predictor import Predictor

    heldout = tiny_unet.dataset.heldout
    with Predictor(unet_files["tflite", "fp32"]) as p:
        trained_on = card_inputs(p.card, heldout)
        for i in range(len(heldout)):
            assert np.array_equal(p.task.preprocess(heldout.x[i])[0], trained_on[i : i + 1])
        gray = p(heldout.x[0].max(axis=2)).results[0]  # a 2-D gray frame works too
        assert gray.mask.shape == heldout.x.shape[1:3]


def test_edgekit_run_saves_an_overlay_where_the_mask_is_and_prints_the_summary(unet_files, tmp_path):
    import cv2

    from edgekit.runtime.predictor import Predictor

    rng = np.random.default_rng(123)
    frame, truth = draw_scene(rng, size=160)  # not the model's 32x32: the mask comes back at 160x160
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame)
    model, out = unet_files["tflite", "fp32"], tmp_path / "out.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgekit.cli",
            "run",
            str(model),
            "--source",
            str(image),
            "--save",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout.splitlines()[0])
    with Predictor(model) as p:
        mask = p(frame).results[0].mask
    assert mask.shape == (160, 160) and iou_dice(mask, truth > 0)[0] > 0.5
    [summary] = record["results"]
    assert summary["fraction"] == pytest.approx(mask.mean(), abs=1e-6)
    assert summary["box"] == list(bounding_box(mask)) and summary["size"] == [160, 160]
    assert set(summary) == {"label", "fraction", "area", "box", "size"}  # no full array in the JSON
    drawn = cv2.imread(str(out))
    changed = (drawn != frame).any(axis=2)
    assert changed[mask].all()  # every mask pixel is tinted
    near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the outline
    away = ~near
    away[:32] = False  # the label written in the top-left corner
    assert not changed[away].any()


@pytest.mark.runtime_only
def test_segment_runtime_and_masks_loader_import_no_tensorflow():
    code = (
        "import sys\n"
        "import edgekit.runtime.tasks.segment, edgekit.runtime.datasets.masks\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow imported'\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr


# ---- the bar -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_unet_reaches_its_bar_on_generated_scenes(tmp_path):
    """U-Net IoU >= 0.8 on the held-out generated scenes. The documented 256x256 / 64-filter model
    is too slow for two CPU cores, so this trains the same architecture at 64x64 RGB, 8-128 filters."""
    from edgekit.models.train import train
    from edgekit.runtime.datasets.synth import make

    make("scenes", tmp_path / "scenes", seed=0)  # 2,000 training and 400 test scenes, 160x160
    hparams = {"size": 64, "base_filters": 8, "channels": 3}
    result = train(
        "unet",
        tmp_path / "run",
        data=str(tmp_path / "scenes"),
        hparams=hparams,
        epochs=25,
        batch_size=16,
        quiet=True,
    )
    m = result.card.metrics
    print(
        f"unet {hparams}: held-out IoU {m['heldout_iou']:.4f}, Dice {m['heldout_dice']:.4f} in {result.seconds:.0f}s"
    )
    assert m["heldout_iou"] >= get_recipe("unet").evaluation.bar
