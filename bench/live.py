"""Live behaviour over time: a synthetic 30 fps video (moving shapes) played in real time through
the run pipeline (what `edgekit run --realtime` does) with a detector, for two minutes by default.

Reports end-to-end latency (capture to result) p50/p99 in the first and the last `--window`
seconds (flat means no queue builds up), frames in / processed / dropped, and the throughput the
machine sustained. Runs `edgekit.runtime.pipeline.Pipeline` in this process, the loop `edgekit run`
runs; saves JSON to bench/results/live.json.

    python bench/live.py                       # 120 s at 30 fps, BlazeFace short-range (TFLite)
    python bench/live.py --seconds 20 --fps 600   # faster than the model: frames are dropped
    python bench/live.py --model runs/det/model_int8.tflite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "runtime" / "assets" / "face_detection_short_range.tflite"


def write_video(path: Path, seconds: float, fps: float, size: tuple[int, int]) -> Path:
    """Moving shapes on a gradient, with the frame number written on each frame (MJPG .avi)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write MJPG video to {path}")
    background = np.tile(np.linspace(40, 120, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    n = int(round(seconds * fps))
    for i in range(n):
        t = i / fps
        frame = background.copy()
        cx, cy = int(w / 2 + w / 3 * np.sin(t)), int(h / 2 + h / 3 * np.cos(1.3 * t))
        cv2.circle(frame, (cx, cy), h // 8, (40, 200, 240), -1)
        x0 = int((t * 90) % (w + 100)) - 100
        cv2.rectangle(frame, (x0, h // 5), (x0 + 100, h // 5 + 70), (200, 80, 60), -1)
        angle = t * 60
        box = cv2.boxPoints(((w * 0.7, h * 0.7), (90, 50), angle)).astype(np.int32)
        cv2.fillPoly(frame, [box], (90, 220, 90))
        cv2.putText(frame, f"{i:05d}", (10, h - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    return path


def window_stats(rows: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Latency percentiles and throughput of the frames captured in [start, end) seconds."""
    picked = [r for r in rows if start <= r["t"] < end]
    ms = np.array([r["latency_ms"] for r in picked])
    return {
        "from_s": round(start, 1),
        "to_s": round(end, 1),
        "processed": len(picked),
        "fps": round(len(picked) / (end - start), 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 3) if ms.size else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 3) if ms.size else None,
        "max_ms": round(float(ms.max()), 3) if ms.size else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=FACE, help="a detector (default: BlazeFace short-range)"
    )
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--fps", type=float, default=30.0, help="the video's frame rate")
    parser.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT")
    parser.add_argument("--window", type=float, default=20.0, help="seconds compared at start and end")
    parser.add_argument("--threads", type=int, help="inference threads (default: the library's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "live.json")
    args = parser.parse_args()

    from edgekit.benchmark.results import machine
    from edgekit.fileio import write_text
    from edgekit.runtime.pipeline import Pipeline, RunOptions, RunResult
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.sources import SourceOptions

    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="edgekit-live-") as tmp:
        video = Path(tmp) / "shapes.avi"
        t0 = time.perf_counter()
        write_video(video, args.seconds, args.fps, (w, h))
        print(
            f"wrote {video.name}: {args.seconds:g} s at {args.fps:g} fps, {w}x{h} "
            f"({video.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
        rows: list[dict[str, Any]] = []

        def record(result: RunResult) -> None:
            rows.append({"t": result.item.t_capture, "latency_ms": result.latency * 1e3})

        options = RunOptions(source=SourceOptions(realtime=True))
        t0 = time.perf_counter()
        ran = Pipeline(Predictor(args.model, threads=args.threads), str(video), options).run(record)
        wall = time.perf_counter() - t0
        if not rows:
            raise SystemExit(f"no frame of {video} was processed: {ran.describe()}")

    first = rows[0]["t"]
    rows = [{"t": r["t"] - first, "latency_ms": r["latency_ms"]} for r in rows]
    summary = ran.to_dict()
    span = args.seconds
    win = min(args.window, span / 2)
    early, late = window_stats(rows, 0.0, win), window_stats(rows, span - win, span)
    growth = late["p99_ms"] / early["p99_ms"] if early["p99_ms"] and late["p99_ms"] else None
    doc = {
        "machine": machine(),
        "model": str(args.model),
        "video": {"seconds": args.seconds, "fps": args.fps, "size": [w, h]},
        "summary": summary,
        "first_window": early,
        "last_window": late,
        "p99_last_over_first": round(growth, 3) if growth else None,
        "wall_s": round(wall, 2),
    }
    print(
        f"{summary['frames_in']} frames in, {summary['processed']} processed, {summary['dropped']} dropped; "
        f"sustained {summary['fps']} fps; latency p50 {summary['latency_ms']['p50']} ms, "
        f"p99 {summary['latency_ms']['p99']} ms"
    )
    for name, s in (("first", early), ("last", late)):
        print(
            f"{name} {win:g} s: {s['processed']} processed ({s['fps']} fps), "
            f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms"
        )
    if growth:
        print(f"p99 last/first: {growth:.2f}x")
    write_text(args.out, json.dumps(doc, indent=2))
    print(f"saved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
