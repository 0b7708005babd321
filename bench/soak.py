"""Soak: continuous inference through the `Pipeline` for N minutes per model, to show a long run
holds its memory and its speed. Prints and saves JSON: RSS growth after warm-up (goal <= 1 MB) and
the p99 latency of the last minute against the first (goal: within 10%).

    python bench/soak.py --minutes 30 --mnist quickstart/model_int8.tflite --out soak.json

Two processes pinned to one core run both at once in half the time (load stays constant):

    taskset -c 0 python bench/soak.py --out soak-blazeface.json &
    taskset -c 0 python bench/soak.py --no-blazeface --mnist quickstart/model_int8.tflite --out soak-mnist.json

BlazeFace runs on a looping video made from scikit-image photos; the MNIST int8 file (if given)
on a looping folder-free stream of its shipped digits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.runtime.pipeline import Pipeline, RunOptions
from edgekit.runtime.run_stats import Reservoir
from edgekit.runtime.sources import Item, Source

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"
WARMUP_S = 20.0
# values kept per minute: a run's 4,096 put a p99's rank within +-0.3 points, which on a steep
# tail is several per cent of latency, as much as the 10% compared; 2**17 puts it within +-0.06
KEPT = 2**17


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def make_video(path: Path, frames: int = 60) -> Path:
    """A short video of photos that slide, written with OpenCV (MJPG), to loop over."""
    import cv2
    from skimage import data

    photos = [np.ascontiguousarray(getattr(data, n)()[..., ::-1]) for n in ("astronaut", "chelsea", "coffee")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        canvas = np.zeros((480, 640, 3), np.uint8)
        photo = cv2.resize(photos[(i // 20) % 3], (400, 400))
        x = 10 + 4 * (i % 20)
        canvas[40:440, x : x + 400] = photo
        writer.write(canvas)
    writer.release()
    return path


class Loop(Source):
    """Frames (decoded once) handed over again and again until the deadline: a looping video."""

    kind = "loop"

    def __init__(self, frames: list[np.ndarray], seconds: float, name: str) -> None:
        super().__init__()
        self.frames, self.deadline, self.name = frames, time.perf_counter() + seconds, name

    def __iter__(self) -> Iterator[Item]:
        i = 0
        while time.perf_counter() < self.deadline:
            yield Item(self.frames[i % len(self.frames)], i, f"{self.name}#{i}", time.perf_counter())
            i += 1


def video_frames(path: Path) -> list[np.ndarray]:
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def soak(model: Path, frames: list[np.ndarray], seconds: float) -> dict:
    """Run `model` over the looping frames for `seconds`; per-minute p99 and RSS after warm-up."""
    t0 = time.perf_counter()
    minutes: dict[int, Reservoir] = {}  # fixed size each: the soak's own record must not grow
    rss: dict[str, float] = {}

    def record(result) -> None:
        now = time.perf_counter() - t0
        minute = int(now // 60)
        if minute not in minutes:
            minutes[minute] = Reservoir(size=KEPT, seed=minute)
        if now >= WARMUP_S and "after_warmup" not in rss:
            rss["after_warmup"] = rss_mb()
        minutes[minute].add(result.latency)

    pipeline = Pipeline.open(model, Loop(frames, seconds, model.name), RunOptions())
    summary = pipeline.run(callback=record)
    rss["end"] = rss_mb()
    own = sum(r.values.nbytes for r in minutes.values()) / 2**20  # 1 MB a minute of the soak's own
    # whole minutes only, and the first one after the warm-up (loading, caches, the first frames)
    full = [m for m in sorted(minutes) if (m + 1) * 60 <= seconds and m * 60 >= WARMUP_S] or sorted(minutes)
    first, last = minutes[full[0]], minutes[full[-1]]
    p99 = (first.percentile(99) * 1e3, last.percentile(99) * 1e3)
    per_minute = [
        {
            "minute": m,
            "p50_ms": round(minutes[m].percentile(50) * 1e3, 3),
            "p99_ms": round(minutes[m].percentile(99) * 1e3, 3),
        }
        for m in sorted(minutes)
    ]
    return {
        "model": str(model),
        "seconds": round(seconds, 1),
        "processed": summary.processed,
        "fps": summary.fps,
        "rss_mb_after_warmup": round(rss.get("after_warmup", rss["end"]), 2),
        "rss_mb_end": round(rss["end"], 2),
        "rss_growth_mb": round(rss["end"] - rss.get("after_warmup", rss["end"]) - own, 3),
        "p99_ms_first_minute": round(p99[0], 3),
        "p99_ms_last_minute": round(p99[1], 3),
        "p99_ratio": round(p99[1] / p99[0], 3),
        "per_minute": per_minute,
        "summary": summary.to_dict(),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="per model")
    ap.add_argument("--mnist", type=Path, help="the quickstart's model_int8.tflite")
    ap.add_argument(
        "--no-blazeface", action="store_true", help="only the --mnist file (run the two as two processes)"
    )
    ap.add_argument("--out", type=Path, default=Path("soak.json"))
    args = ap.parse_args()
    seconds = args.minutes * 60
    runs = []
    if not args.no_blazeface:
        video = make_video(Path(os.environ.get("TMPDIR", "/tmp")) / f"edgekit-soak-{os.getpid()}.avi")
        runs.append(soak(ASSETS / "face_detection_short_range.tflite", video_frames(video), seconds))
        video.unlink()
        print(json.dumps(runs[-1]), flush=True)
    if args.mnist:
        from edgekit.runtime.datasets import load_dataset

        digits = list(load_dataset("mnist", "shipped").heldout.x[:200])
        runs.append(soak(args.mnist, digits, seconds))
        print(json.dumps(runs[-1]), flush=True)
    args.out.write_text(json.dumps({"runs": runs}, indent=2))


if __name__ == "__main__":
    main()
