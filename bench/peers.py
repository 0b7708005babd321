"""edgekit against the tools people would use instead, side by side in one process, on the same files.

- YOLOv8n at 320 (random weights built from Ultralytics' own yaml, no download; exported to ONNX by
  Ultralytics): edgekit's Predictor against Ultralytics' `predict` on the same ONNX file (its
  AutoBackend runs ONNX Runtime too), end to end, at conf 0.01 and 0.25.
- BlazeFace short-range (`runtime/assets/face_detection_short_range.tflite`): edgekit against
  MediaPipe Tasks' `FaceDetector` on the same network, and against the bare interpreter call; and
  edgekit's post-processing as a fraction of its inference.

Each comparison is interleaved call by call, rotating which side goes first, so load and drift fall
on both alike; figures are p50 wall time of the whole call a user makes. Run it in a virtualenv that
has the peers (Ultralytics, MediaPipe, ai-edge-litert), never edgekit's own:

    /tmp/peers/bin/python bench/peers.py --runs 300

edgekit is imported from this checkout whether or not it is installed there. Prints the ratios;
writes every figure to bench/results/peers-HOST.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing may download weights or fonts
ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / "tests" / "fixtures" / "ultralytics" / "shapes.png"
BLAZEFACE = ROOT / "runtime" / "assets" / "face_detection_short_range.tflite"
GOALS = {"yolo_vs_ultralytics": 1.0, "blazeface_vs_mediapipe": 0.8, "blazeface_post_of_inference": 0.2}


def this_checkout() -> None:
    """Import edgekit from this checkout: its packages live at the root (runtime/, export/, models/),
    which an editable install maps onto `edgekit.*`; appending the root to `edgekit.__path__` does
    the same without installing edgekit into the peers' virtualenv."""
    sys.path.insert(0, str(ROOT))
    import edgekit

    edgekit.__path__.append(str(ROOT))


def p50_ms(samples: list[float]) -> float:
    return float(np.median(samples)) * 1e3


def test_image() -> tuple[np.ndarray, str]:
    """The astronaut photo (BGR, 512x512) where scikit-image's copy is on this machine; else the
    parity fixtures' shapes picture."""
    import cv2

    for found in sorted(ROOT.glob(".venv/lib/python*/site-packages/skimage/data/astronaut.png")):
        return cv2.imread(str(found)), "astronaut"
    return cv2.imread(str(SHAPES)), "shapes"


def yolo_file(work: Path, imgsz: int) -> Path:
    """YOLOv8n from Ultralytics' yaml with random weights, exported to ONNX once into `work`."""
    path = work / f"yolov8n-{imgsz}.onnx"
    if path.exists():
        return path
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n.yaml")  # random weights: no download
    # a random head scores every class ~1e-5 (Ultralytics' bias prior) and barely varies with the
    # image, so conf 0.01 would leave nothing to decode. Class biases set per output level give a
    # real photo's load: none of the 1600 stride-8 anchors pass, the 400 stride-16 ones pass 0.01
    # only, the 100 stride-32 ones pass both: 500 candidates at conf 0.01, 100 at 0.25
    for branch, mean in zip(model.model.model[-1].cv3, (-12.0, -4.0, -1.0), strict=True):
        branch[-1].bias.data.normal_(mean, 1.0)
    work.mkdir(parents=True, exist_ok=True)
    exported = Path(model.export(format="onnx", imgsz=imgsz, simplify=False))
    exported.replace(path)
    return path


def match(a: np.ndarray, b: np.ndarray) -> int:
    """How many boxes of `a` have a box of `b` at IoU >= 0.9."""
    if not len(a) or not len(b):
        return 0
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((rb - lt).clip(0), axis=2)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], axis=1), np.prod(b[:, 2:] - b[:, :2], axis=1)
    iou = inter / (area_a[:, None] + area_b[None, :] - inter)
    return int((iou >= 0.9).any(axis=1).sum())


def bench_yolo(path: Path, image: np.ndarray, conf: float, imgsz: int, runs: int, warmup: int) -> dict:
    """edgekit's Predictor against Ultralytics' predict on one ONNX file, at one threshold."""
    from ultralytics import YOLO

    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.tasks import TaskOptions
    from edgekit.runtime.timing import interleaved

    peer = YOLO(str(path), task="detect")
    with Predictor(path, options=TaskOptions(conf=conf)) as ours:
        stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}
        peer_stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}

        def edgekit_call() -> None:
            for k, v in ours(image).times.items():
                stages[k].append(v)

        def peer_call() -> None:
            (r,) = peer.predict(image, imgsz=imgsz, conf=conf, verbose=False)
            for k in peer_stages:
                peer_stages[k].append(r.speed[k] / 1e3)

        times = interleaved({"edgekit": edgekit_call, "ultralytics": peer_call}, runs, warmup)
        found = ours(image).results
        (want,) = peer.predict(image, imgsz=imgsz, conf=conf, verbose=False)
    want_boxes = want.boxes.xyxy.cpu().numpy()
    got_boxes = np.array([d.box for d in found]).reshape(-1, 4)
    e, u = p50_ms(times["edgekit"]), p50_ms(times["ultralytics"])
    return {
        "conf": conf,
        "edgekit_ms": e,
        "ultralytics_ms": u,
        "ratio": e / u,
        "edgekit_stages_ms": {k: p50_ms(v[warmup:]) for k, v in stages.items()},
        "ultralytics_stages_ms": {k: p50_ms(v[warmup:]) for k, v in peer_stages.items()},
        "boxes": {
            "edgekit": len(got_boxes),
            "ultralytics": len(want_boxes),
            "matched": match(want_boxes, got_boxes),
        },
        "samples_s": times,
    }


def with_normalisation(model: bytes) -> bytes:
    """The BlazeFace file with mean/std 127.5 image-input metadata, written by MediaPipe's own
    metadata writer: `FaceDetector` refuses a file without it.

    MediaPipe 1.2's wheel lacks the compiled `_pywrap_metadata_version` that the writer imports
    only to stamp the minimum parser version into the metadata; normalisation options need the
    schema's first version, 1.0.0, so a stand-in returns exactly that."""
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        __import__(name)
    except ImportError:
        parts = name.split(".")
        for i in range(3, len(parts)):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        stand_in = types.ModuleType(name)
        stand_in.GetMinimumMetadataParserVersion = lambda buf: "1.0.0"  # type: ignore[attr-defined]
        sys.modules[name] = stand_in
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

    writer = metadata_writer.MetadataWriter.create(bytearray(model))
    out, _ = writer.add_general_info("BlazeFace short-range").add_image_input([127.5], [127.5]).populate()
    del writer  # its temporary folder goes now, not at interpreter exit when its modules are gone
    return bytes(out)


def bare_interpreter(model: bytes, x: np.ndarray) -> Callable[[], object]:
    """The interpreter by hand on a prepared input: set, invoke, read both outputs."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    index_in = it.get_input_details()[0]["index"]
    index_out = [d["index"] for d in it.get_output_details()]

    def call() -> object:
        it.set_tensor(index_in, x)
        it.invoke()
        return [it.get_tensor(i) for i in index_out]

    call.interpreter = it  # type: ignore[attr-defined]
    return call


def bench_blazeface(image: np.ndarray, runs: int, warmup: int) -> dict:
    """edgekit against MediaPipe Tasks' FaceDetector and against the bare interpreter."""
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.timing import interleaved

    plain = BLAZEFACE.read_bytes()
    tagged = with_normalisation(plain)
    detector = vision.FaceDetector.create_from_options(
        vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=tagged))
    )
    with detector, Predictor(BLAZEFACE) as ours:
        x = ours.task.preprocess(image)[0]
        bare, bare_tagged = bare_interpreter(plain, x), bare_interpreter(tagged, x)
        identical = all(np.array_equal(a, b) for a, b in zip(bare(), bare_tagged(), strict=True))
        stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}

        def edgekit_call() -> None:
            for k, v in ours(image).times.items():
                stages[k].append(v)

        def mediapipe_call() -> object:
            # what a user with an OpenCV frame does: RGB, wrap, detect
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))

        calls = {"edgekit": edgekit_call, "mediapipe": mediapipe_call, "bare": bare}
        times = interleaved(calls, runs, warmup)
        found = ours(image).results
        theirs = [d.bounding_box for d in mediapipe_call().detections]
    got = np.array([d.box for d in found]).reshape(-1, 4)
    corners = [(b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height) for b in theirs]
    want = np.array(corners, dtype=np.float64).reshape(-1, 4)
    e, m, b = (p50_ms(times[k]) for k in ("edgekit", "mediapipe", "bare"))
    inference, post = p50_ms(stages["inference"][warmup:]), p50_ms(stages["postprocess"][warmup:])
    return {
        "edgekit_ms": e,
        "mediapipe_ms": m,
        "bare_interpreter_ms": b,
        "ratio_vs_mediapipe": e / m,
        "ratio_vs_bare": e / b,
        "edgekit_stages_ms": {k: p50_ms(v[warmup:]) for k, v in stages.items()},
        "post_of_inference": post / inference,
        "raw_outputs_identical_with_metadata": identical,
        "faces": {
            "edgekit": len(got),
            "mediapipe": len(want),
            "max_corner_px": float(np.abs(got - want).max()) if got.shape == want.shape != (0, 4) else None,
        },
        "samples_s": times,
    }


def cpu() -> dict:
    """The CPU's model name and its SIMD flags: int8 and fp32 speeds depend on them."""
    info = {"machine": platform.machine(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            info.setdefault("model", value.strip())
        if key.strip() == "flags":
            wanted = ("avx", "fma", "vnni", "amx", "f16c", "neon", "asimd")
            info["simd"] = sorted({f for f in value.split() if f.startswith(wanted)})
            break
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/edgekit-peers"), help="the YOLO export's folder"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / f"peers-{platform.node()}.json"
    )
    parser.add_argument("--only", choices=("yolo", "blazeface"))
    args = parser.parse_args()
    this_checkout()
    image, image_name = test_image()
    report: dict = {
        "cpu": cpu(),
        "image": image_name,
        "runs": args.runs,
        "python": platform.python_version(),
        "load_average_before": os.getloadavg(),  # 1, 5, 15 minutes: other work on the machine skews every figure
    }
    if args.only in (None, "yolo"):
        path = yolo_file(args.work, args.imgsz)
        report["yolov8n"] = [
            bench_yolo(path, image, c, args.imgsz, args.runs, args.warmup) for c in (0.01, 0.25)
        ]
        for r in report["yolov8n"]:
            post = r["edgekit_stages_ms"]["postprocess"], r["ultralytics_stages_ms"]["postprocess"]
            print(
                f"YOLOv8n {args.imgsz} conf {r['conf']}: edgekit {r['edgekit_ms']:.2f} ms, Ultralytics "
                f"predict {r['ultralytics_ms']:.2f} ms -> {r['ratio']:.2f}x "
                f"(goal <= {GOALS['yolo_vs_ultralytics']}); post {post[0]:.2f} vs {post[1]:.2f} ms; "
                f"boxes {r['boxes']}"
            )
    if args.only in (None, "blazeface"):
        r = report["blazeface"] = bench_blazeface(image, args.runs, args.warmup)
        print(
            f"BlazeFace short-range: edgekit {r['edgekit_ms']:.2f} ms, MediaPipe FaceDetector "
            f"{r['mediapipe_ms']:.2f} ms -> {r['ratio_vs_mediapipe']:.2f}x "
            f"(goal <= {GOALS['blazeface_vs_mediapipe']}); bare interpreter "
            f"{r['bare_interpreter_ms']:.2f} ms "
            f"-> {r['ratio_vs_bare']:.2f}x; post-processing {r['post_of_inference']:.0%} of inference "
            f"(goal <= {GOALS['blazeface_post_of_inference']:.0%}); faces {r['faces']}; "
            f"raw outputs identical with metadata: {r['raw_outputs_identical_with_metadata']}"
        )
    report["load_average_after"] = os.getloadavg()
    report["goals"] = GOALS
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(
        f"load average {report['load_average_before'][0]:.1f} before, {report['load_average_after'][0]:.1f} after"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
