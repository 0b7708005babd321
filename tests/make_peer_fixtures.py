"""Make the Ultralytics parity fixtures: random-weight models built from the package's own yamls (no
download), exported to ONNX, with Ultralytics' own `predict` results stored as JSON.

Run in a virtualenv that has Ultralytics (never edgekit's own):
    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install ultralytics onnx onnxruntime opencv-python-headless
    YOLO_OFFLINE=1 /tmp/peers/bin/python tests/make_peer_fixtures.py [NAME ...]
The TFLite rows need what Ultralytics' `format="tflite"` exports with (8.4: litert-torch, no download):
    /tmp/peers/bin/pip install litert-torch "ai-edge-litert>=2.3,<2.4"
The tests (tests/test_ultralytics.py) then need neither torch nor Ultralytics."""

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


def spread_features(net, image: np.ndarray) -> None:
    """Set every batch norm's running mean and variance to those of `image` (BGR, already at the
    input size) passing through `net`, so no layer's features fade to a constant."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)[None].float() / 255
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average: one pass gives this image's statistics
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


def main() -> None:
    import torch
    from ultralytics import YOLO

    OUT.mkdir(parents=True, exist_ok=True)
    images = {"shapes.png": test_image(), "noisy.png": noisy_image()}
    for file, image in images.items():
        cv2.imwrite(str(OUT / file), image)
    only = set(sys.argv[1:])  # fixture names to remake; none: all
    for yaml, export_args, name in MODELS:
        if only and name not in only:
            continue
        file = "noisy.png" if name in SPREAD_FEATURES else "shapes.png"
        image = images[file]
        torch.manual_seed(0)
        names, imgsz = (CLS_NAMES, CLS_IMGSZ) if "-cls" in yaml else (NAMES, IMGSZ)
        with tempfile.TemporaryDirectory() as tmp:
            model = YOLO(str(tiny_yaml(yaml, Path(tmp), names)))
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
            if name in SPREAD_FEATURES:
                assert image.shape[:2] == (imgsz, imgsz)  # as predict feeds it: no letterbox
                spread_features(model.model, image)
            model.model.names = dict(enumerate(names))
            args = {"format": "onnx", **export_args}
            if args["format"] == "onnx":
                args["simplify"] = False
            with contextlib.chdir(tmp):  # the exporter writes into the working directory
                exported = Path(model.export(imgsz=imgsz, **args)).resolve()
            stored = f"{name}.{args['format']}"
            shutil.copy(exported, OUT / stored)
        peer = YOLO(str(OUT / stored), task=model.task)
        (result,) = peer.predict(image, imgsz=imgsz, conf=CONF, verbose=False)
        record = peer_record(result, image)
        record.update(conf=CONF, imgsz=imgsz, names=result.names, task=model.task, image=file, model=stored)
        (OUT / f"{name}.json").write_text(json.dumps(record))
        print(name, {k: len(v) for k, v in record.items() if isinstance(v, list)})


if __name__ == "__main__":
    main()
