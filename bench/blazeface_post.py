"""BlazeFace post-processing as a fraction of inference, before and after, side by side in one run.

The goal (issue 14): edgekit's post-processing of a BlazeFace frame (the finite check, anchor decode,
sigmoid, weighted NMS, boxes and keypoints back onto the frame) takes at most 20% of the model's
invoke on the same frame. Post-processing runs right after an invoke here, as it does in a
Predictor call: the invoke has just pushed the decoder's code and data out of the caches, and a
loop that decodes one array over and over measures something else (half the time, on a 2-core VM).

Each frame is preprocessed and run once; then either the post-processing as it was before this
work (`before_*` below, a frozen copy of 6c12675's code, numpy only) or the current one decodes its
outputs, alternating frame by frame, so load and drift fall on both alike. Figures are medians.

    .venv/bin/python bench/blazeface_post.py --runs 1000

Prints the ratios; writes every figure to bench/results/blazeface-post-HOST.json."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from edgekit.runtime.detection import Detection, LetterboxInfo
from edgekit.runtime.detection_formats.ssd import SsdSettings
from edgekit.runtime.predictor import Predictor, check_finite

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "runtime" / "assets"
MODELS = ("face_detection_short_range.tflite", "face_detection_front_128x128_barracuda.onnx")
GOAL = 0.2


# --- the post-processing before (6c12675), kept to time it beside the current one -----------------


def before_check_finite(outputs: list[np.ndarray]) -> None:
    for out in outputs:
        if out.dtype.kind in "fc" and not np.isfinite(out).all():
            raise ValueError("non-finite")


def before_overlapping(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    a, b = boxes[:, None], boxes[None]
    wh = (np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    size = (boxes[:, 2:] - boxes[:, :2]).clip(0)
    area = size[:, 0] * size[:, 1]
    return inter > iou_threshold * (area[:, None] + area[None] - inter)


def before_weighted_nms(boxes, scores, iou_threshold, keypoints, max_det):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    near = before_overlapping(boxes, iou_threshold)
    np.fill_diagonal(near, True)
    left = np.ones(len(boxes), dtype=bool)
    tops, members = [], []
    while len(tops) < max_det and left.any():
        top = int(left.argmax())
        members.append(near[top] & left)
        left &= ~members[-1]
        tops.append(top)
    weights = np.array(members, dtype=np.float32).reshape(len(tops), len(boxes)) * scores
    weights /= weights.sum(axis=1, keepdims=True)
    kps = np.asarray(keypoints, dtype=np.float32)[order]
    flat = kps.reshape(len(kps), math.prod(kps.shape[1:]))
    merged_kps = (weights @ flat).reshape(len(tops), *kps.shape[1:])
    return weights @ boxes, scores[tops], merged_kps


def before_decode(regressors, classificators, settings: SsdSettings, affine, info: LetterboxInfo):
    h, w = settings.hw
    logits = np.asarray(classificators, dtype=np.float32).reshape(-1)
    chosen = np.flatnonzero(logits >= settings.logit_threshold)
    if not chosen.size:
        return []
    scale, centre = affine
    raw = np.asarray(regressors, dtype=np.float32).reshape(len(logits), -1, 2)[chosen]
    points = raw * scale[chosen]
    points[:, :1] += centre[chosen]
    points[:, 2:] += centre[chosen]
    scores = 1 / (1 + np.exp(-logits[chosen]))
    centre, half = points[:, 0], points[:, 1] / 2
    boxes = np.hstack([centre - half, centre + half])
    mask = (half > 0).all(axis=1)
    if not mask.all():
        boxes, scores, points = boxes[mask], scores[mask], points[mask]
    boxes, scores, kps = before_weighted_nms(boxes, scores, settings.iou, points[:, 2:], settings.max_det)
    gain, shift = np.array((w, h), np.float32), np.zeros(2, np.float32)
    gain, shift = gain / info.scale, -np.array(info.pad, np.float32) / info.scale
    boxes = (boxes.reshape(-1, 2, 2) * gain + shift).reshape(-1, 4)
    src_h, src_w = info.src_shape
    boxes = boxes.clip(0, (src_w, src_h, src_w, src_h))
    kps = (kps * gain + shift).reshape(len(boxes), -1).tolist()
    label = settings.labels[0] if settings.labels else "object"
    return [
        Detection(tuple(b), s, label, 0, tuple(zip(k[::2], k[1::2], strict=True)))
        for b, s, k in zip(boxes.tolist(), scores.tolist(), kps, strict=True)
    ]


def before_affine(settings: SsdSettings) -> tuple[np.ndarray, np.ndarray]:
    anchors = settings.anchors
    h, w = settings.hw
    return (anchors[:, None, 2:4] / np.array((w, h), np.float32)), anchors[:, None, :2].copy()


# --- the run ---------------------------------------------------------------------------------------


def test_image() -> tuple[np.ndarray, str]:
    """The astronaut photo (BGR, 512x512) from scikit-image where it is installed; else a grey frame."""
    try:
        from skimage import data
    except ImportError:
        return np.full((480, 640, 3), 128, np.uint8), "grey"
    return np.ascontiguousarray(data.astronaut()[..., ::-1]), "astronaut"


def split_outputs(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(regressors, logits) from either layout: one output each, or one per anchor layer (ONNX)."""
    regs = [o for o in outputs if o.shape[-1] != 1]
    logits = [o for o in outputs if o.shape[-1] == 1]
    if len(regs) > 1:  # the barracuda conversion: (1, 512, c) then (1, 384, c)
        regs, logits = sorted(regs, key=lambda o: -o.shape[1]), sorted(logits, key=lambda o: -o.shape[1])
    return np.concatenate(regs, axis=1), np.concatenate(logits, axis=1)


def bench(model: Path, image: np.ndarray, runs: int, warmup: int) -> dict:
    with Predictor(model) as predictor:
        task, session = predictor.task, predictor.session
        settings, affine = task.settings, before_affine(task.settings)

        def before(outputs: list[np.ndarray]) -> list[Detection]:
            before_check_finite(outputs)
            return before_decode(*split_outputs(outputs), settings, affine, task.letterbox_info)

        def after(outputs: list[np.ndarray]) -> list[Detection]:
            check_finite(outputs)
            return task.postprocess(outputs)

        outputs = session.run(task.preprocess(image))
        want, got = before(outputs), after(outputs)
        assert len(want) == len(got), (len(want), len(got))
        diff = max(
            (float(np.abs(np.subtract(a.box, b.box)).max()) for a, b in zip(want, got, strict=True)),
            default=0.0,
        )
        kp_diff = max(
            (
                float(np.abs(np.subtract(a.keypoints, b.keypoints)).max())
                for a, b in zip(want, got, strict=True)
            ),
            default=0.0,
        )
        infer: dict[str, list[float]] = {"before": [], "after": []}
        post: dict[str, list[float]] = {"before": [], "after": []}
        # the split's work (a concatenate of the ONNX's per-layer outputs) is the reader's own in
        # `after` too, so `before` does the same work; `split_outputs` only picks the arrays
        for i in range(warmup + 2 * runs):
            name, fn = ("before", before) if i % 2 else ("after", after)
            feeds = task.preprocess(image)
            t0 = time.perf_counter()
            outputs = session.run(feeds)
            t1 = time.perf_counter()
            fn(outputs)
            t2 = time.perf_counter()
            if i >= warmup:
                infer[name].append(t1 - t0)
                post[name].append(t2 - t1)
        stages: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}
        for _ in range(runs):  # the Predictor's own stage times, as `edgekit bench` and peers.py read them
            for k, v in predictor(image).times.items():
                stages[k].append(v)
    result: dict = {
        "model": model.name,
        "detections": len(got),
        "max_box_diff_px": diff,
        "max_keypoint_diff_px": kp_diff,
    }
    for name in ("before", "after"):
        i_ms, p_ms = (float(np.median(v)) * 1e3 for v in (infer[name], post[name]))
        result[name] = {"inference_ms": i_ms, "post_ms": p_ms, "post_of_inference": p_ms / i_ms}
    # the one figure that load on the machine barely moves: both sides ran on the same frames
    result["post_after_over_before"] = result["after"]["post_ms"] / result["before"]["post_ms"]
    med = {k: float(np.median(v)) * 1e3 for k, v in stages.items()}
    result["predictor_stages_ms"] = med
    result["predictor_post_of_inference"] = med["postprocess"] / med["inference"]
    return result


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            wanted = ("avx", "fma", "vnni", "amx", "f16c")
            return sorted({f for f in line.split(":", 1)[1].split() if f.startswith(wanted)})
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="frames per side")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / f"blazeface-post-{platform.node()}.json"
    )
    args = parser.parse_args()
    image, image_name = test_image()
    report: dict = {
        "cpu": {"machine": platform.machine(), "cores": os.cpu_count(), "simd": cpu_flags()},
        "image": image_name,
        "runs": args.runs,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_before": os.getloadavg(),
        "goal_post_of_inference": GOAL,
        "models": [bench(ASSETS / m, image, args.runs, args.warmup) for m in MODELS],
        "load_average_after": os.getloadavg(),
    }
    for r in report["models"]:
        b, a = r["before"], r["after"]
        print(
            f"{r['model']}: inference {a['inference_ms']:.2f} ms; post before {b['post_ms'] * 1e3:.0f} µs "
            f"({b['post_of_inference']:.0%}), after {a['post_ms'] * 1e3:.0f} µs ({a['post_of_inference']:.0%}, "
            f"{r['post_after_over_before']:.2f}x the time); "
            f"Predictor's stage times: {r['predictor_post_of_inference']:.0%} (goal <= {GOAL:.0%}); "
            f"{r['detections']} faces, max difference {max(r['max_box_diff_px'], r['max_keypoint_diff_px'])} px"
        )
    print(
        f"simd {report['cpu']['simd']}; load average {report['load_average_before'][0]:.1f} before, "
        f"{report['load_average_after'][0]:.1f} after"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
