"""Darknet YOLO: cfgs and weights written here, read by real `cv2.dnn.readNetFromDarknet`, run through
`edgekit run`, rebuilt in Keras by `edgekit import darknet` and checked against OpenCV output for
output, then converted to TFLite and ONNX and run with the same decode."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python
from typer.testing import CliRunner

from edgekit.cli import app

runner = CliRunner()

# yolov3-tiny in miniature: a 64x96 (non-square) input, the size-2 stride-1 maxpool, a shortcut,
# route -4 back from the first head, upsample, route joining two layers; 3 classes
V3_TINY = """
[net]
# a comment, as real cfgs have
batch=1
width=96
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[shortcut]
from=-2
activation=linear

[maxpool]
size=2
stride=1

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask = 3,4,5
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6
jitter=.3
ignore_thresh = .7
truth_thresh = 1
random=1

[route]
layers = -4

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[upsample]
stride=2

[route]
layers = -1, 2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=24
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=3
num=6
"""
# the channels each convolution reads, worked out by hand from the cfg above
V3_TINY_CONV_INPUTS = [3, 8, 16, 16, 16, 16, 24, 16]

# yolov4-tiny in miniature: stride-2 convolutions (Darknet's top-left padding), route groups
# (group_id=1 of 2), mish, scale_x_y=1.05, masks 3,4,5 and 1,2,3; 2 classes
V4_TINY = """
[net]
width=64
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=mish

[route]
layers=-1
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[route]
layers = -1,-2

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky

[route]
layers = -6,-1

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=16
size=1
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask = 3,4,5
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=2
num=6
scale_x_y = 1.05

[route]
layers = -4

[convolutional]
batch_normalize=1
filters=8
size=1
stride=1
pad=1
activation=leaky

[upsample]
stride=2

[route]
layers = -1, -10

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask = 1,2,3
anchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=2
num=6
scale_x_y = 1.05
"""
V4_TINY_CONV_INPUTS = [3, 8, 16, 8, 8, 16, 32, 32, 16, 32, 16, 40, 16]

MODELS = {
    # name: cfg, conv inputs, weights header version (0.1 writes a 32-bit `seen`, 0.2 a 64-bit one)
    "v3tiny": (V3_TINY, V3_TINY_CONV_INPUTS, (0, 1, 0)),
    "v4tiny": (V4_TINY, V4_TINY_CONV_INPUTS, (0, 2, 5)),
}


def write_weights(cfg_text: str, conv_inputs: list[int], path: Path, version, seed: int = 0) -> int:
    """Random weights in Darknet's layout: header, then per convolution beta (+ gamma, mean,
    variance with batch norm) or bias, then the kernel as (out, in, kh, kw). Returns the file size."""
    rng = np.random.default_rng(seed)
    convs = [block for block in cfg_text.split("[") if block.startswith("convolutional]")]
    assert len(convs) == len(conv_inputs)
    blobs = []
    for block, channels in zip(convs, conv_inputs):
        opts = dict(line.split("=") for line in block.splitlines()[1:] if "=" in line)
        filters, size = int(opts["filters"]), int(opts["size"])
        if opts.get("batch_normalize") == "1":
            beta, gamma = rng.normal(0, 0.2, filters), rng.uniform(0.5, 1.5, filters)
            mean, var = rng.normal(0, 0.2, filters), rng.uniform(0.5, 1.5, filters)
            blobs += [beta, gamma, mean, var]
        else:  # a head: objectness biased low, as a trained detector's is away from objects
            bias = rng.normal(0, 0.5, filters)
            bias[4 :: filters // 3] -= 3
            blobs.append(bias)
        gain = 1.5 if opts.get("batch_normalize") == "1" else 0.75
        blobs.append(rng.normal(0, gain / np.sqrt(channels * size * size), filters * channels * size * size))
    major, minor, revision = version
    seen = struct.pack("<q" if major * 10 + minor >= 2 else "<i", 12345)
    data = struct.pack("<3i", major, minor, revision) + seen + np.concatenate(blobs).astype("<f4").tobytes()
    path.write_bytes(data)
    return len(data)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The two cfgs with their random weights, beside each other as Darknet models are shipped."""
    folder = tmp_path_factory.mktemp("darknet")
    out = {}
    for name, (text, conv_inputs, version) in MODELS.items():
        cfg = folder / f"{name}.cfg"
        cfg.write_text(text)
        write_weights(text, conv_inputs, cfg.with_suffix(".weights"), version)
        out[name] = cfg
    return out


@pytest.fixture(scope="module")
def imported(models, tmp_path_factory) -> dict[str, Path]:
    """`edgekit import darknet X.cfg X.weights --out DIR` for both models: DIR/model.keras."""
    out = {}
    for name, cfg in models.items():
        folder = tmp_path_factory.mktemp(f"{name}-keras")
        result = runner.invoke(
            app,
            [
                "import",
                "darknet",
                str(cfg),
                str(cfg.with_suffix(".weights")),
                "--out",
                str(folder),
                "--force",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        assert "2 YOLO heads" in result.stdout
        out[name] = folder / "model.keras"
    return out


def opencv_net(cfg: Path):
    import cv2

    return cv2.dnn.readNetFromDarknet(str(cfg), str(cfg.with_suffix(".weights")))


def picture(seed: int = 0, hw: tuple[int, int] = (150, 200)) -> np.ndarray:
    """Smooth random shapes (so the random network sees structure, not only noise), BGR uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), hw[::-1], interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(img)


def the_course_way(cfg: Path, image: np.ndarray, conf: float, nms: float) -> list[tuple]:
    """YOLO through OpenCV as the course writes it: blobFromImage, forward the unconnected output
    layers, keep rows whose best class score beats `conf`, boxes in pixels, cv2.dnn.NMSBoxes."""
    import cv2

    from edgekit.runtime.darknet import read_cfg

    h, w, _ = read_cfg(cfg).input_shape
    net = opencv_net(cfg)
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, (w, h), swapRB=True, crop=False))
    height, width = image.shape[:2]
    boxes, scores, ids = [], [], []
    for out in net.forward(net.getUnconnectedOutLayersNames()):
        for row in out:
            class_id = int(np.argmax(row[5:]))
            score = float(row[5 + class_id])
            if score > conf:
                cx, cy, bw, bh = row[0] * width, row[1] * height, row[2] * width, row[3] * height
                boxes.append([cx - bw / 2, cy - bh / 2, bw, bh])
                scores.append(score)
                ids.append(class_id)
    keep = np.array(cv2.dnn.NMSBoxes(boxes, scores, conf, nms)).reshape(-1)
    result = []
    for i in keep:
        x, y, bw, bh = boxes[i]
        box = (max(x, 0), max(y, 0), min(x + bw, width), min(y + bh, height))  # edgekit clips to the frame
        result.append((ids[i], scores[i], box))
    return sorted(result, key=lambda r: -r[1])


def run_json(*args) -> list[dict]:
    result = runner.invoke(app, ["run", *(str(a) for a in args), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"source"')]


def same_detections(got: list[dict], want: list[tuple], atol: float = 1e-3) -> None:
    assert len(got) == len(want), (got, want)
    for d, (class_id, score, box) in zip(got, want):
        assert d["class_id"] == class_id
        assert d["score"] == pytest.approx(score, abs=1e-5)
        np.testing.assert_allclose(d["box"], box, atol=atol)


# --- the cfg and weights files ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.runtime_only
def test_cfg_shapes_and_weights_size_agree_with_opencv(models, name):
    from edgekit.runtime.darknet import read_cfg

    cfg = read_cfg(models[name])
    weights = models[name].with_suffix(".weights")
    header = 20 if MODELS[name][2][1] >= 2 else 16
    assert cfg.weight_floats() * 4 + header == weights.stat().st_size
    net = opencv_net(models[name])
    h, w, _ = cfg.input_shape
    net.setInput(np.zeros((1, 3, h, w), np.float32))
    outs = net.forward(net.getUnconnectedOutLayersNames())
    assert [o.shape for o in outs] == [(head.rows, 5 + head.classes) for head in cfg.heads()]
    assert list(net.getUnconnectedOutLayersNames()) == [f"yolo_{head.layer}" for head in cfg.heads()]


# --- OpenCV DNN through `edgekit run` -------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.runtime_only
def test_run_cfg_gives_the_course_detections(models, tmp_path, name):
    import cv2

    # no taller than the input: edgekit then resizes with INTER_LINEAR as blobFromImage does (it
    # shrinks taller frames with INTER_AREA, as edgekit's own detector was trained); wider, so x shrinks
    image = picture(3, (60, 150))
    cv2.imwrite(str(tmp_path / "frame.png"), image)
    (record,) = run_json(models[name], "--source", tmp_path / "frame.png", "--conf", "0.3")
    want = the_course_way(models[name], image, conf=0.3, nms=0.4)
    assert len(want) >= 2  # the random network finds something, so the comparison means something
    same_detections(record["results"], want)
    classes = 3 if name == "v3tiny" else 2
    assert {d["label"] for d in record["results"]} <= {str(i) for i in range(classes)}


@pytest.mark.runtime_only
def test_run_by_the_weights_file_with_labels_and_classes(models, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "frame.png"), picture(1))
    (tmp_path / "names.txt").write_text("cat\n\ndog\nbird\n")
    cfg = models["v3tiny"]
    (everything,) = run_json(cfg, "--source", tmp_path / "frame.png", "--conf", "0.3")
    (named,) = run_json(
        cfg.with_suffix(".weights"), "--source", tmp_path / "frame.png", "--conf", "0.3",
        "--labels", tmp_path / "names.txt", "--classes", "1,2", "--threads", "1",
    )  # fmt: skip
    names = ["cat", "dog", "bird"]
    assert named["results"] == [
        {**d, "label": names[d["class_id"]]} for d in everything["results"] if d["class_id"] in (1, 2)
    ]
    assert named["results"]


@pytest.mark.runtime_only
def test_names_file_beside_the_cfg_is_used(models, tmp_path):
    import cv2

    from edgekit.runtime.predictor import Predictor

    folder = tmp_path / "model"
    folder.mkdir()
    for suffix in (".cfg", ".weights"):
        (folder / f"v4tiny{suffix}").write_bytes(models["v4tiny"].with_suffix(suffix).read_bytes())
    (folder / "v4tiny.names").write_text("left\nright\n")
    cv2.imwrite(str(tmp_path / "frame.png"), picture(2))
    with Predictor(folder / "v4tiny.cfg") as p:
        assert p.card.labels == ("left", "right")
        assert p.session.backend == "opencv-dnn" and p.session.device == "cpu"
        assert p.card.postprocess["format"] == "darknet"


@pytest.mark.runtime_only
def test_the_opencv_path_imports_no_tensorflow(models):
    proc = run_python(
        "import sys, numpy as np\n"
        "from edgekit.runtime.predictor import Predictor\n"
        "from edgekit.runtime.tasks import TaskOptions\n"
        f"with Predictor({str(models['v4tiny'])!r}, options=TaskOptions(conf=0.2)) as p:\n"
        "    p(np.full((50, 60, 3), 128, np.uint8))\n"
        "print([m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- `edgekit import darknet`: the same network in Keras --------------------------------------------


def opencv_raw_heads(cfg_path: Path, x_nchw: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """OpenCV's raw head tensors (the convolution feeding each [yolo], NHWC) and its decoded rows."""
    from edgekit.runtime.darknet import read_cfg

    heads = read_cfg(cfg_path).heads()
    net = opencv_net(cfg_path)
    net.setInput(x_nchw)
    outs = net.forward([f"conv_{h.layer - 1}" for h in heads] + [f"yolo_{h.layer}" for h in heads])
    return [o.transpose(0, 2, 3, 1) for o in outs[: len(heads)]], outs[len(heads) :]


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_keras_heads_equal_opencv(models, imported, name):
    from edgekit.runtime.darknet import read_cfg
    from edgekit.runtime.detection_formats.darknet import decode_head
    from edgekit.runtime.files.keras import load_keras_model

    cfg = read_cfg(models[name])
    h, w, c = cfg.input_shape
    model = load_keras_model(imported[name])
    x = np.random.default_rng(3).uniform(0, 1, (1, c, h, w)).astype(np.float32)
    raw, rows = opencv_raw_heads(models[name], x)
    got = [np.asarray(o) for o in model(x.transpose(0, 2, 3, 1), training=False)]
    assert [g.shape for g in got] == [r.shape for r in raw]
    for g, r in zip(got, raw):
        assert np.abs(r).max() > 1  # real signal, not a dead network
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())
    for g, r, head in zip(got, rows, cfg.heads()):
        np.testing.assert_allclose(decode_head(g, head, (h, w)), r, rtol=1e-4, atol=1e-5)

    card = json.loads(imported[name].with_name("card.json").read_text())
    assert card["task"] == "detect" and card["postprocess"]["format"] == "darknet"
    assert [hd["grid"] for hd in card["postprocess"]["heads"]] == [list(hd.grid) for hd in cfg.heads()]
    assert card["preprocess"]["size"] == [h, w] and card["preprocess"]["resize"] == "stretch"


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_keras_model_runs_with_the_opencv_detections(models, imported, tmp_path, name):
    import cv2

    cv2.imwrite(str(tmp_path / "frame.png"), picture(4))
    (keras_run,) = run_json(imported[name], "--source", tmp_path / "frame.png", "--conf", "0.3")
    (cv_run,) = run_json(models[name], "--source", tmp_path / "frame.png", "--conf", "0.3")
    assert cv_run["results"]
    same_detections(
        keras_run["results"], [(d["class_id"], d["score"], d["box"]) for d in cv_run["results"]], atol=1e-2
    )


def test_exported_tflite_and_onnx_run_with_the_same_decode(models, imported, tmp_path):
    """The imported model through the export layer's converters (fp32 TFLite and ONNX, int8 TFLite),
    card embedded, then `edgekit run` on each: the same detections as OpenCV on the cfg."""
    import cv2

    from edgekit.card import ModelCard
    from edgekit.export.base import ExportOptions, Quantization, get_exporter
    from edgekit.runtime.files.keras import load_keras_model
    from edgekit.runtime.predictor import Predictor

    keras_path = imported["v4tiny"]
    card = ModelCard.load(keras_path.with_name("card.json"))
    model = load_keras_model(keras_path)
    calib = np.stack([cv2.cvtColor(picture(s, (64, 64)), cv2.COLOR_BGR2RGB) for s in range(8)]) / 255.0
    image = picture(3)
    cv2.imwrite(str(tmp_path / "frame.png"), image)
    (want,) = run_json(models["v4tiny"], "--source", tmp_path / "frame.png", "--conf", "0.3")
    with Predictor(models["v4tiny"]) as p:
        reference_rows = p.task.decode.rows(p.infer(image))
    assert want["results"]
    for fmt, q in (("tflite", "fp32"), ("onnx", "fp32"), ("tflite", "int8")):
        exporter = get_exporter(fmt)
        out = tmp_path / f"v4tiny_{q}{exporter.suffix}"
        raw = exporter.convert(
            model, card, ExportOptions(fmt, Quantization(q), out), calib.astype(np.float32)
        )
        out.write_bytes(exporter.embed(raw, card.replace(format=fmt, quantization=q)))
        with Predictor(out) as p:
            rows = p.task.decode.rows(p.infer(image))
        if q == "fp32":
            (got,) = run_json(out, "--source", tmp_path / "frame.png", "--conf", "0.3")
            expected = [(d["class_id"], d["score"], d["box"]) for d in want["results"]]
            same_detections(got["results"], expected, atol=1e-2)
            np.testing.assert_allclose(rows, reference_rows, rtol=1e-4, atol=1e-5)
        else:  # int8 (8 calibration pictures): centres and objectness close on average
            centre, obj = (np.abs(rows[:, s] - reference_rows[:, s]) for s in (slice(0, 2), 4))
            assert centre.mean() < 0.01 and obj.mean() < 0.02


# --- bad input ------------------------------------------------------------------------------------


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.runtime_only
def test_a_cfg_without_weights_says_what_is_missing(tmp_path):
    (tmp_path / "alone.cfg").write_text(V4_TINY)
    (tmp_path / "frame.png").write_bytes(b"")
    for args in (("run", tmp_path / "alone.cfg", "--source", tmp_path / "frame.png"),
                 ("import", "darknet", tmp_path / "alone.cfg")):  # fmt: skip
        result = invoke(*args)
        assert result.exit_code == 1
        assert "no weights for alone.cfg" in result.stderr and "alone.weights" in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.runtime_only
def test_truncated_weights_name_expected_and_actual_bytes(models, tmp_path):
    import cv2

    from edgekit.runtime.darknet import read_cfg

    cfg = tmp_path / "short.cfg"
    cfg.write_text(V4_TINY)
    full = models["v4tiny"].with_suffix(".weights").read_bytes()
    cfg.with_suffix(".weights").write_bytes(full[:-1000])
    cv2.imwrite(str(tmp_path / "frame.png"), picture())
    expected = 4 * read_cfg(cfg).weight_floats()
    for args in (
        ("run", cfg, "--source", tmp_path / "frame.png"),
        ("import", "darknet", cfg, "--out", tmp_path / "k"),
    ):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert (
            f"short.weights holds {expected - 1000:,} bytes of weights after its 20-byte header"
            in result.stderr
        )
        assert f"short.cfg needs {expected:,}" in result.stderr and "truncated" in result.stderr
    assert not (tmp_path / "k").exists()  # nothing written


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("\x00\x01garbage\nmore garbage\n", "is neither a [section] nor key=value"),
        ("[convolutional]\nfilters=3\n", "does not start with a [net] section"),
        (V4_TINY.replace("filters=21", "filters=20", 1), "needs 21 channels"),
        (V4_TINY.replace("size=3", "size=three", 1), "has size=three, not a number"),
        (V4_TINY.replace("layers = -6,-1", "layers = -60"), "refers to layer -60"),
        (V4_TINY.replace("[upsample]", "[reorgx]"), "[reorgx] at line"),
    ],
)
@pytest.mark.runtime_only
def test_a_corrupt_cfg_is_one_clear_sentence(models, tmp_path, text, says):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(text)
    cfg.with_suffix(".weights").write_bytes(models["v4tiny"].with_suffix(".weights").read_bytes())
    (tmp_path / "frame.png").write_bytes(b"")
    result = invoke("run", cfg, "--source", tmp_path / "frame.png")
    assert result.exit_code == 1
    assert says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.runtime_only
def test_labels_of_the_wrong_count_and_devices_opencv_lacks(models, tmp_path):
    import cv2

    from edgekit.runtime.backends.opencv_dnn import cuda_available

    cv2.imwrite(str(tmp_path / "frame.png"), picture())
    (tmp_path / "three.names").write_text("a\nb\nc\n")
    result = invoke(
        "run", models["v4tiny"], "--source", tmp_path / "frame.png", "--labels", tmp_path / "three.names"
    )
    assert result.exit_code == 1
    assert "the model detects 2 classes but the card has 3 labels" in result.stderr
    result = invoke("run", models["v4tiny"], "--source", tmp_path / "frame.png", "--device", "tensorrt")
    assert result.exit_code == 1 and "runs on --device auto, cpu, cuda, not 'tensorrt'" in result.stderr
    if not cuda_available(cv2):  # the pip wheels: --device cuda must say so, not fall back quietly
        result = invoke("run", models["v4tiny"], "--source", tmp_path / "frame.png", "--device", "cuda")
        assert result.exit_code == 1 and "OpenCV built with CUDA" in result.stderr
