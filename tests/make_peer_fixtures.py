"""Make the Ultralytics parity fixtures: random-weight models built from the package's own yamls (no
download), exported to ONNX, with Ultralytics' own `predict` results stored as JSON.

Run in a virtualenv that has Ultralytics (never edgekit's own; on x86-64 Python 3.11 pip takes
torch 2.14.1 and torchvision 0.29.1 from the machine's own copies, and Ultralytics needs both):
    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics onnx onnxruntime opencv-python-headless
    YOLO_OFFLINE=1 /tmp/peers/bin/python tests/make_peer_fixtures.py [NAME ...]
The TFLite rows need what Ultralytics' `format="tflite"` exports with (8.4: litert-torch, no download):
    /tmp/peers/bin/pip install litert-torch "ai-edge-litert>=2.3,<2.4"
The MediaPipe rows (`mediapipe`: FaceDetector on frames of other shapes than the square input)
need MediaPipe Tasks and scikit-image's photos, in a virtualenv of their own:
    /tmp/mp/bin/pip install mediapipe scikit-image opencv-python-headless
    /tmp/mp/bin/python tests/make_peer_fixtures.py mediapipe
The tests (tests/test_ultralytics.py, tests/test_mediapipe_ssd.py) then need neither torch,
Ultralytics nor MediaPipe."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing may download weights or fonts

OUT = Path(__file__).resolve().parent / "fixtures" / "ultralytics"
IMGSZ = 160
CONF = 0.05
NAMES = ["cat", "dog", "kite"]  # a 3-class head: COCO's names would be wrong labels
MASKS = 16  # masks stored per fixture
CLS_IMGSZ = 64
CLS_NAMES = [f"kind{i}" for i in range(10)]  # top-5 needs more than 5 classes
# (package yaml, export arguments, fixture name)
MODELS = [
    ("v8/yolov8.yaml", {}, "yolov8"),
    ("v8/yolov8.yaml", {"nms": True}, "yolov8_nms"),
    ("11/yolo11.yaml", {}, "yolo11"),
    ("v8/yolov8-seg.yaml", {}, "yolov8_seg"),
    ("v8/yolov8-pose.yaml", {}, "yolov8_pose"),
    ("v8/yolov8-obb.yaml", {}, "yolov8_obb"),
    ("v8/yolov8-cls.yaml", {}, "yolov8_cls"),
    # the same networks (same seed, same weights) exported to TFLite
    ("v8/yolov8-seg.yaml", {"format": "tflite"}, "yolov8_seg_tflite"),
    ("v8/yolov8-pose.yaml", {"format": "tflite"}, "yolov8_pose_tflite"),
    ("v8/yolov8-obb.yaml", {"format": "tflite"}, "yolov8_obb_tflite"),
]


# random weights shrink the picture layer by layer (PyTorch's default init, batch norm with unit
# running variance): by the OBB head every anchor of a level saw the same features to 1e-10, so its
# scores tied exactly and which box Fast-NMS kept was the sort's tie order. These fixtures get their
# batch-norm statistics from the fixture image first, so every layer sees features of unit spread.
# Segment and pose tied too (~3 distinct scores over ~95 boxes): x86 and arm64 TFLite kernels round
# the last bits differently, so the tie order, and so which boxes survived, differed between them.
SPREAD_FEATURES = {f"yolov8_{task}{fmt}" for task in ("obb", "seg", "pose") for fmt in ("", "_tflite")}


def spread_features(net, *images: np.ndarray) -> None:
    """Set every batch norm's running mean and variance to those of `images` (BGR, already at the
    input size, passed through `net` as one batch), so no layer's features fade to a constant."""
    import torch

    x = np.stack([np.ascontiguousarray(image[..., ::-1]) for image in images])
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average: one pass gives these images' statistics
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()


def tiny_yaml(package_yaml: str, tmp: Path, names: list[str]) -> Path:
    """The package's yaml at width 1/16 with its classes named in it: files of a few hundred KB."""
    import yaml
    from ultralytics.cfg import __file__ as cfg

    spec = yaml.safe_load((Path(cfg).parent / "models" / package_yaml).read_text())
    spec.update(nc=len(names), scales={"n": [0.33, 0.0625, 256]}, names=dict(enumerate(names)))
    path = tmp / (Path(package_yaml).stem + "n.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def test_image() -> np.ndarray:
    """A 200x150 BGR picture of coloured shapes: random-weight models give many boxes on it."""
    rng = np.random.default_rng(0)
    image = np.full((150, 200, 3), 90, np.uint8)
    for _ in range(12):
        x, y = rng.integers(0, 180, 2)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, (int(x), int(y)), (int(x) + 30, int(y) + 25), color, -1)
        cv2.circle(image, (int(rng.integers(0, 200)), int(rng.integers(0, 150))), 12, color[::-1], -1)
    return image


def peer_record(result, image: np.ndarray) -> dict:
    """What Ultralytics' predict found, as JSON: boxes (xyxy, or xywhr for obb), scores, classes;
    keypoints (N, K, 3); masks at the frame's size as packed bits; class probabilities."""
    import base64

    from ultralytics.utils import ops

    if result.probs is not None:
        return {"probs": result.probs.data.cpu().numpy().tolist(), "top5": list(map(int, result.probs.top5))}
    boxes = result.obb if result.obb is not None else result.boxes
    record = {
        "boxes": (boxes.xywhr if result.obb is not None else boxes.xyxy).cpu().numpy().tolist(),
        "scores": boxes.conf.cpu().numpy().tolist(),
        "classes": boxes.cls.cpu().numpy().astype(int).tolist(),
    }
    if result.keypoints is not None:
        record["keypoints"] = result.keypoints.data.cpu().numpy().tolist()
    if result.masks is not None:
        # the masks at the input's size, mapped onto the frame as Ultralytics' plot does (scale_masks)
        # (the best MASKS only, best first as the boxes are: a frame of bits each, so the file stays small)
        masks = result.masks.data[:MASKS]
        frame = ops.scale_masks(masks[None].float(), image.shape[:2])[0] > 0.5
        bits = np.packbits(frame.cpu().numpy().astype(np.uint8), axis=None)
        record["masks"] = {"shape": list(frame.shape), "bits": base64.b64encode(bits.tobytes()).decode()}
    return record


def noisy_image() -> np.ndarray:
    """The shapes at the input's own size (no letterbox padding) with noise on every pixel: a random
    OBB head scores flat regions alike, and ties leave Fast-NMS's result to the sort's tie order."""
    rng = np.random.default_rng(1)
    image = cv2.resize(test_image(), (IMGSZ, IMGSZ)).astype(np.int16)
    return np.clip(image + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)


# Frames the letterbox pads, each its own shape: landscape (rows of grey above and below), portrait
# (columns left and right), and one whose sides are no multiple of the stride (32) nor of each other,
# so the scale is not round and the padding splits unevenly (20 rows above, 21 below).
PADDED_FRAMES = {"landscape.png": (150, 200), "portrait.png": (200, 150), "odd.png": (157, 211)}
# detectors whose batch-norm statistics come from a letterboxed frame as predict feeds it (grey 114
# above and below): their features respond to the padded rows, so a letterbox filled with another
# grey, or placed a row off, changes their boxes and scores (the detectors above hardly notice)
PADDED_MODELS = [
    ("v8/yolov8.yaml", {}, "yolov8_padded"),
    ("v8/yolov8.yaml", {"nms": True}, "yolov8_padded_nms"),
]
PADDED_CONF = 0.25  # predict's default: every anchor of these scores over 0.05, NMS keeps ~100


def noisy_frame(shape: tuple[int, int], seed: int) -> np.ndarray:
    """The shapes at `shape` (height, width) with noise on every pixel, so no two boxes tie."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(test_image(), (shape[1], shape[0])).astype(np.int16)
    return np.clip(image + rng.normal(0, 40, image.shape), 0, 255).astype(np.uint8)


def build(yaml: str, names: list[str], tmp: Path):
    """A random-weight model from the package's yaml, seeded, with its class biases lifted."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(str(tiny_yaml(yaml, tmp, names)))
    head = model.model.model[-1]
    if hasattr(head, "cv3"):
        # random weights score every class ~1e-5 (Ultralytics' bias prior): lift the class bias
        # so the parity check has many boxes of every class to compare
        for branch in head.cv3:
            branch[-1].bias.data.normal_(-2.0, 1.0)
    else:
        # a classifier's random logits are all near 0: spread them so top-5 has an order
        head.linear.weight.data *= 20
        head.linear.bias.data.normal_(0.0, 1.0)
    model.model.names = dict(enumerate(names))
    return model


def export(model, imgsz: int, export_args: dict, name: str, tmp: Path) -> str:
    """Export into the fixtures folder; the stored file's name."""
    args = {"format": "onnx", **export_args}
    if args["format"] == "onnx":
        args["simplify"] = False
    with contextlib.chdir(tmp):  # the exporter writes into the working directory
        exported = Path(model.export(imgsz=imgsz, **args)).resolve()
    stored = f"{name}.{args['format']}"
    shutil.copy(exported, OUT / stored)
    return stored


def predict(
    stored: str, task: str, image: np.ndarray, file: str, imgsz: int, name: str, conf: float = CONF
) -> None:
    """Ultralytics' own predict on the stored file, written as NAME.json."""
    from ultralytics import YOLO

    peer = YOLO(str(OUT / stored), task=task)
    (result,) = peer.predict(image, imgsz=imgsz, conf=conf, verbose=False)
    record = peer_record(result, image)
    record.update(conf=conf, imgsz=imgsz, names=result.names, task=task, image=file, model=stored)
    (OUT / f"{name}.json").write_text(json.dumps(record))
    print(name, {k: len(v) for k, v in record.items() if isinstance(v, list)})


MEDIAPIPE_OUT = OUT.parent / "mediapipe"
BLAZEFACE = OUT.parents[2] / "runtime" / "assets" / "face_detection_short_range.tflite"


def faces_frames() -> dict[str, np.ndarray]:
    """The astronaut's face at two sizes on frames far from square (BGR): a wide one, which the
    letterbox pads above and below, and a tall one of odd size, padded left and right."""
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut()[..., ::-1])
    face = photo[40:220, 130:310]  # 180 x 180 around the face
    wide = np.full((240, 560, 3), 90, np.uint8)
    wide[30:210, 40:220] = face
    wide[45:195, 370:520] = cv2.resize(face, (150, 150), interpolation=cv2.INTER_AREA)
    tall = np.full((461, 203, 3), 90, np.uint8)
    tall[20:200, 10:190] = face
    tall[300:430, 40:170] = cv2.resize(face, (130, 130), interpolation=cv2.INTER_AREA)
    return {"faces_wide.png": wide, "faces_tall.png": tall}


def mediapipe_fixtures() -> None:
    """MediaPipe Tasks' FaceDetector (BlazeFace short range, its default thresholds) on each frame:
    boxes, scores and keypoints in frame pixels, as faces_*.json."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    sys.path.insert(0, str(OUT.parents[2] / "bench"))
    from peers import with_normalisation  # the normalisation metadata FaceDetector asks for

    MEDIAPIPE_OUT.mkdir(parents=True, exist_ok=True)
    model = with_normalisation(BLAZEFACE.read_bytes())
    options = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=model))
    with vision.FaceDetector.create_from_options(options) as detector:
        for file, frame in faces_frames().items():
            cv2.imwrite(str(MEDIAPIPE_OUT / file), frame)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            found = detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).detections
            h, w = frame.shape[:2]
            record = {
                "image": file,
                "mediapipe": mp.__version__,
                "boxes": [
                    [b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height]
                    for b in (d.bounding_box for d in found)
                ],
                "scores": [d.categories[0].score for d in found],
                # MediaPipe gives keypoints normalised to the frame
                "keypoints": [[[k.x * w, k.y * h] for k in d.keypoints] for d in found],
            }
            (MEDIAPIPE_OUT / file.replace(".png", ".json")).write_text(json.dumps(record))
            print(file, len(found), record["scores"])


def main() -> None:
    if sys.argv[1:] == ["mediapipe"]:
        return mediapipe_fixtures()
    from ultralytics.data.augment import LetterBox

    OUT.mkdir(parents=True, exist_ok=True)
    images = {"shapes.png": test_image(), "noisy.png": noisy_image()}
    images.update({f: noisy_frame(shape, seed) for seed, (f, shape) in enumerate(PADDED_FRAMES.items(), 2)})
    for file, image in images.items():
        cv2.imwrite(str(OUT / file), image)
    only = set(sys.argv[1:])  # fixture names to remake; none: all
    for yaml, export_args, name in MODELS:
        if only and name not in only:
            continue
        file = "noisy.png" if name in SPREAD_FEATURES else "shapes.png"
        image = images[file]
        names, imgsz = (CLS_NAMES, CLS_IMGSZ) if "-cls" in yaml else (NAMES, IMGSZ)
        with tempfile.TemporaryDirectory() as tmp:
            model = build(yaml, names, Path(tmp))
            if name in SPREAD_FEATURES:
                assert image.shape[:2] == (imgsz, imgsz)  # as predict feeds it: no letterbox
                spread_features(model.model, image)
            stored = export(model, imgsz, export_args, name, Path(tmp))
        predict(stored, model.task, image, file, IMGSZ if "-cls" not in yaml else CLS_IMGSZ, name)
    for yaml, export_args, name in PADDED_MODELS:
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = build(yaml, NAMES, Path(tmp))
            # the frames as predict feeds them to an exported model: letterboxed to the square
            # input with grey 114 (LetterBox(auto=False), as predict does for a file of fixed size)
            fed = [LetterBox((IMGSZ, IMGSZ), auto=False)(image=images[file]) for file in PADDED_FRAMES]
            assert all(
                f.shape[:2] == (IMGSZ, IMGSZ) and ((f[:5] == 114).all() or (f[:, :5] == 114).all())
                for f in fed
            )
            spread_features(model.model, *fed)
            stored = export(model, IMGSZ, export_args, name, Path(tmp))
        for file in PADDED_FRAMES:
            stem = f"{name}_{Path(file).stem}"
            predict(stored, model.task, images[file], file, IMGSZ, stem, conf=PADDED_CONF)


if __name__ == "__main__":
    main()
