"""What watching a run costs, and several sources through one model, measured side by side in one
process (`Pipeline`, as `edgekit run` runs it). Prints and saves JSON:

- processed fps of BlazeFace and of the quickstart MNIST int8 model on a 640x480 video, read as
  fast as the model goes, plain (`edgekit run`) and with `--serve` and 0, 1 and 5 viewers, each a
  separate process reading the page's two streams (`/stream.mjpg` and `/results`), as a browser on
  another machine would; configurations interleaved in a shuffled order per round, the median of
  the rounds, given as ratios to the plain run (goals: 0 viewers >= 0.99, 5 viewers >= 0.90);
- the delay from a frame's capture to its arrival: a 30 fps camera that draws its capture time
  (ms since the epoch, 40 bits as black and white blocks) into each frame, read back from the
  page's picture by headless Chromium (drawn into a canvas every 2 ms) and from the decoded
  JPEGs of a plain HTTP client; p50 and p99;
- 1, 2 and 4 sources through one model: copies of the video as fast as the model goes (total
  processed fps, and each source's share), and as 30 fps cameras (the video in real time).

    python bench/serve.py --mnist quickstart/model_int8.tflite [--rounds 5] [--out bench/results/serve.json]
    python bench/serve.py --soak-minutes 10     # viewers coming and going: memory over time

The viewers' own reading runs on the same machine (2 cores here): what it takes is in the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# numpy and edgekit are imported where they are used: a viewer process (`--viewers`) needs neither,
# and its start-up would be counted against the run it watches

ROOT = Path(__file__).resolve().parents[1]
FACE = ROOT / "runtime" / "assets" / "face_detection_short_range.tflite"
CONFIGS = [("run", 0), ("serve", 0), ("serve", 1), ("serve", 5)]
BITS, BLOCK, PER_ROW = 40, 16, 20  # the clock drawn into a frame: 2 rows of 20 blocks of 16x16 px


# -- the video and the clock -----------------------------------------------------------------------


def make_video(path: Path, frames: int) -> Path:
    """640x480 MJPG at 30 fps: photos (scikit-image's) sliding across a dark canvas."""
    import cv2
    import numpy as np
    from skimage import data

    photos = [np.ascontiguousarray(getattr(data, n)()[..., ::-1]) for n in ("astronaut", "chelsea", "coffee")]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(frames):
        canvas = np.full((480, 640, 3), 30, np.uint8)
        photo = cv2.resize(photos[(i // 30) % 3], (400, 400))
        x = 10 + 4 * (i % 30)
        canvas[60:460, x : x + 400] = photo
        writer.write(canvas)
    writer.release()
    return path


def draw_clock(frame: Any, ms: int) -> None:
    for b in range(BITS):
        r, c = divmod(b, PER_ROW)
        frame[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 255 if (ms >> b) & 1 else 0


def read_clock(frame: Any) -> int:
    ms = 0
    for b in range(BITS):
        r, c = divmod(b, PER_ROW)
        y, x = r * BLOCK + BLOCK // 2, c * BLOCK + BLOCK // 2
        if frame[y - 2 : y + 2, x - 2 : x + 2].mean() > 127:
            ms |= 1 << b
    return ms


def now_ms() -> int:
    return int(time.time() * 1000) % (1 << BITS)


class ClockCamera:
    """A camera's interface (`read`, `release`): the photo at `fps`, its capture time drawn in."""

    def __init__(self, frame: Any, fps: float) -> None:
        self.frame, self.period, self.next = frame, 1.0 / fps, time.perf_counter()

    def read(self):
        self.next += self.period
        time.sleep(max(0.0, self.next - time.perf_counter()))
        frame = self.frame.copy()
        draw_clock(frame, now_ms())
        return True, frame

    def release(self) -> None:
        pass


# -- viewers, in their own process -------------------------------------------------------------------


def _request(url: str, path: str) -> socket.socket:
    host, _, rest = url.removeprefix("http://").partition("/")
    query = rest[rest.index("?") :] if "?" in rest else ""
    name, port = host.rsplit(":", 1)
    s = socket.create_connection((name, int(port)), timeout=30)
    s.sendall(f"GET {path}{query} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return s


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def threads_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's threads, by role: the run's own (main) thread, the
    server's two (HTTP and JPEG), the sources' readers, and the rest (the backend's and FFmpeg's
    own pools), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    roles = {threading.main_thread().native_id: "run"}
    for t in threading.enumerate():
        if t.name.startswith("edgekit-serve"):
            roles[t.native_id] = "serve"
        elif t.name.startswith(("edgekit-live", "edgekit-feed")):
            roles[t.native_id] = "sources"
    out = {"run": 0.0, "serve": 0.0, "sources": 0.0, "other": 0.0}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a thread that ended meanwhile
            continue
        out[roles.get(int(tid), "other")] += (int(fields[11]) + int(fields[12])) / tick
    return out


def viewers(url: str, count: int) -> None:
    """`count` viewers, each reading /stream.mjpg and /results to their end, keeping nothing; prints
    the CPU seconds the reading took (not the process's start)."""
    received = [0]

    def drain(path: str, s: socket.socket) -> None:
        with s:
            buf = bytearray(1 << 16)
            while n := s.recv_into(buf):
                received[0] += n

    start = cpu_seconds()
    socks = [(p, _request(url, p)) for _ in range(count) for p in ("/stream.mjpg", "/results")]
    threads = [threading.Thread(target=drain, args=ps) for ps in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"cpu_s": round(cpu_seconds() - start, 3), "bytes": received[0]}))


def client_delays(url: str, seconds: float) -> None:
    """Read /stream.mjpg for `seconds`, decode each JPEG and print the delays (ms) as JSON."""
    import http.client

    import cv2
    import numpy as np

    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("GET", "/stream.mjpg" + (rest[rest.index("?") :] if "?" in rest else ""))
    response = conn.getresponse()
    delays, end, buf = [], time.perf_counter() + seconds, b""
    separator = b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"  # each part ends at the next
    while b"\r\n\r\n" not in buf:
        buf += response.read1(1 << 16)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    while time.perf_counter() < end:
        while separator not in buf:
            buf += response.read1(1 << 16)
        jpeg, buf = buf.split(separator, 1)
        arrived = now_ms()
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        delays.append(arrived - read_clock(frame))
    conn.close()
    print(json.dumps(delays))


# -- measurements ------------------------------------------------------------------------------------


def timed_run(model: Path, video: Path, mode: str, watching: int) -> dict:
    """One run over the video, plain or served to `watching` viewers (connected before it starts):
    processed fps, this process's CPU per processed frame (every thread: the run's, the encoder's,
    the server's, the backend's), and the viewers' CPU."""
    from edgekit.runtime.pipeline import Pipeline, RunOptions
    from edgekit.runtime.serve import ServeOptions

    serve = ServeOptions(port=0, max_viewers=8) if mode == "serve" else None
    clients = None
    with Pipeline.open(model, str(video), RunOptions(serve=serve)) as run:
        if watching:
            clients = subprocess.Popen(
                [sys.executable, __file__, "--viewers", str(watching), run.url],
                stdout=subprocess.PIPE,
                text=True,
            )
            end = time.perf_counter() + 20
            while (run.server.hub.feeds[0].viewers, run.server.results_readers) != (watching, watching):
                if time.perf_counter() > end:
                    raise SystemExit("the viewers did not connect")
                time.sleep(0.02)
        cpu, before = cpu_seconds(), threads_cpu()
        for _ in run:
            pass
        cpu, after = cpu_seconds() - cpu, threads_cpu()
        summary = run.summary()
        encoded = run.server.hub.feeds[0].encoded if run.server else 0
    viewer = json.loads(clients.communicate(timeout=30)[0]) if clients is not None else {"cpu_s": 0.0}
    return {
        "fps": summary.fps,
        "processed": summary.processed,
        "cpu_ms_per_frame": round(cpu * 1e3 / summary.processed, 4),
        "threads_cpu_ms_per_frame": {
            k: round((after[k] - before.get(k, 0.0)) * 1e3 / summary.processed, 4) for k in after
        },
        "viewers_cpu_ms_per_frame": round(viewer["cpu_s"] * 1e3 / summary.processed, 4),
        "encoded": encoded,
    }


def throughput(models: dict[str, Path], video: Path, rounds: int, seed: int) -> dict:
    rng = random.Random(seed)
    runs: dict[str, dict[str, list[dict]]] = {m: {f"{c}-{v}": [] for c, v in CONFIGS} for m in models}
    for r in range(rounds):
        for name, model in models.items():
            order = list(CONFIGS)
            rng.shuffle(order)
            for mode, watching in order:
                got = timed_run(model, video, mode, watching)
                runs[name][f"{mode}-{watching}"].append(got)
                print(f"round {r + 1} {name:9s} {mode} {watching} viewers: {got['fps']:.1f} fps", flush=True)
    out = {}
    for name, by in runs.items():
        fps = {k: statistics.median(g["fps"] for g in v) for k, v in by.items()}
        cpu = {k: statistics.median(g["cpu_ms_per_frame"] for g in v) for k, v in by.items()}
        out[name] = {
            "fps_median": {k: round(v, 1) for k, v in fps.items()},
            "fps_ratio_to_run": {k: round(v / fps["run-0"], 4) for k, v in fps.items()},
            "cpu_ms_per_frame_median": {k: round(v, 4) for k, v in cpu.items()},
            "cpu_ratio_to_run": {k: round(v / cpu["run-0"], 4) for k, v in cpu.items()},
            "run_thread_cpu_ms_per_frame_median": {
                k: round(statistics.median(g["threads_cpu_ms_per_frame"]["run"] for g in v), 4)
                for k, v in by.items()
            },
            "serve_threads_cpu_ms_per_frame_median": {
                k: round(statistics.median(g["threads_cpu_ms_per_frame"]["serve"] for g in v), 4)
                for k, v in by.items()
            },
            "viewers_cpu_ms_per_frame_median": {
                k: round(statistics.median(g["viewers_cpu_ms_per_frame"] for g in v), 4)
                for k, v in by.items()
            },
            "per_round": by,
            "processed": by["run-0"][0]["processed"],
        }
    return out


MEASURE_JS = """() => {
  window.__delays = [];
  const img = document.getElementById("img-0");
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 32;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  let last = -1;
  setInterval(() => {
    if (!img.naturalWidth) return;
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, 320, 32).data;
    let ms = 0;
    for (let b = 0; b < 40; b++) {
      const x = (b % 20) * 16 + 8, y = Math.floor(b / 20) * 16 + 8;
      if (d[(y * 320 + x) * 4] > 127) ms += 2 ** b;
    }
    if (ms !== last) { last = ms; window.__delays.push((Date.now() % 2 ** 40) - ms); }
  }, 2);
}"""


def delay(model: Path, video: Path, seconds: float) -> dict:
    """Capture to browser (Chromium) and to a plain HTTP client, a 30 fps camera through `model`."""
    import cv2

    from edgekit.runtime.pipeline import Pipeline, RunOptions
    from edgekit.runtime.serve import ServeOptions
    from edgekit.runtime.sources.live import LiveSource

    cap = cv2.VideoCapture(str(video))
    frame = cap.read()[1]
    cap.release()
    source = LiveSource("clock camera", lambda: ClockCamera(frame, 30.0))
    run = Pipeline.open(model, source, RunOptions(serve=ServeOptions(port=0)))
    thread = threading.Thread(target=lambda: [None for _ in run], daemon=True)
    thread.start()
    out: dict = {}
    try:
        client = subprocess.Popen(
            [sys.executable, __file__, "--client-delays", run.url, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                )
                page = browser.new_page(bypass_csp=True)
                page.goto(run.url)
                page.wait_for_function(
                    "document.getElementById('img-0') && document.getElementById('img-0').naturalWidth > 0"
                )
                page.evaluate(MEASURE_JS)
                time.sleep(seconds)
                out["browser"] = summarize(page.evaluate("window.__delays"))
                browser.close()
        except Exception as e:  # no Playwright or no Chromium: the HTTP client's figures only
            out["browser"] = {"error": str(e).splitlines()[0]}
        out["http_client"] = summarize(json.loads(client.communicate(timeout=seconds + 30)[0]))
    finally:
        source.close()
        thread.join(10)
        run.close()
    summary = run.summary()
    out["camera_fps"] = 30.0
    out["processed_fps"] = summary.fps
    out["model_latency_ms"] = summary.latency_ms
    return out


def summarize(delays: list[float]) -> dict:
    import numpy as np

    kept = np.asarray(delays[10:], dtype=np.float64)  # the first frames: the page settling
    if kept.size == 0:
        return {"frames": 0}
    p50, p99 = np.percentile(kept, [50, 99])
    return {"frames": int(kept.size), "p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1)}


def publish_cost(frames: int = 100_000) -> float:
    """Microseconds the run's own thread spends per frame on `--serve` (the hub's `publish`: a
    reference and counters) when no one watches; the only work --serve adds to that thread."""
    import numpy as np

    from edgekit.runtime.predictor import Prediction
    from edgekit.runtime.serve.hub import Hub
    from edgekit.runtime.sources import Item, Source
    from edgekit.runtime.sources.many import Feed

    source = Source()
    source.kind, source.name = "video", "video.avi"  # type: ignore[attr-defined]
    hub = Hub([Feed(0, source, pumped=False)], lambda f, r: f, {}, True, max_fps=15, quality=75)
    frame = np.zeros((480, 640, 3), np.uint8)
    items = [Item(frame, i, f"video.avi#{i}", time.perf_counter()) for i in range(frames)]
    times = {"preprocess": 2e-4, "inference": 1.5e-3, "postprocess": 2e-4}
    prediction = Prediction([], times, time.perf_counter())
    start = time.perf_counter()
    for item in items:
        hub.publish(item, prediction)
    return (time.perf_counter() - start) / frames * 1e6


def fairness(counts: list[int]) -> dict:
    """Jain's index (1: every source the same share) and the least and most processed."""
    import numpy as np

    x = np.asarray(counts, dtype=np.float64)
    jain = float(x.sum() ** 2 / (len(x) * (x**2).sum())) if x.any() else None
    return {
        "per_source": counts,
        "jain": round(jain, 4) if jain else None,
        "min_over_max": round(x.min() / x.max(), 4),
    }


def several(models: dict[str, Path], video: Path, live_seconds: float) -> dict:
    from edgekit.runtime.pipeline import Pipeline, RunOptions
    from edgekit.runtime.sources import SourceOptions

    out: dict = {}
    for name, model in models.items():
        rows = {}
        for n in (1, 2, 4):
            with Pipeline.open(model, [str(video)] * n if n > 1 else str(video)) as run:
                for _ in run:
                    pass
                s = run.summary()
            counts = [f.processed for f in s.feeds] or [s.processed]
            rows[n] = {"total_fps": s.fps, **fairness(counts)}
            print(f"{name:9s} {n} files: {s.fps:.1f} fps in all, {counts}", flush=True)
        base = rows[1]["total_fps"]
        for n in rows:
            rows[n]["total_fps_ratio_to_one"] = round(rows[n]["total_fps"] / base, 3)
        out[f"{name}_files"] = rows
    rows = {}
    for n in (1, 2, 4):
        options = RunOptions(source=SourceOptions(realtime=True))
        with Pipeline.open(FACE, [str(video)] * n if n > 1 else str(video), options) as run:
            start = time.perf_counter()
            for _ in run:
                if time.perf_counter() - start > live_seconds:
                    break
            run.source.close()
            s = run.summary()
        feeds = s.feeds or (s,)
        counts = [f.processed for f in feeds]
        rows[n] = {
            "total_fps": s.fps,
            "dropped": [f.dropped for f in feeds],
            "frames_in": [f.frames_in for f in feeds],
            **fairness(counts),
        }
        print(f"blazeface {n} cameras at 30 fps: {s.fps:.1f} fps in all, {counts}", flush=True)
    out["blazeface_cameras_30fps"] = rows
    return out


def churn(url: str, seconds: float, seed: int) -> None:
    """Viewers coming and going for `seconds`: each opens the stream or /results, reads a little
    (some nothing: stalled ones), and leaves; prints how many came."""
    rng, came, end = random.Random(seed), 0, time.perf_counter() + seconds

    def one() -> None:
        path = rng.choice(["/stream.mjpg", "/results", "/snapshot.jpg"])
        try:
            with _request(url, path) as s:
                s.settimeout(5)
                if rng.random() < 0.1:  # a stalled viewer: asks and never reads
                    time.sleep(rng.uniform(0, 3))
                    return
                for _ in range(rng.randint(1, 40)):
                    if not s.recv(1 << 16):
                        break
        except OSError:  # refused (503 closes), reset or timed out: the next one comes anyway
            pass

    while time.perf_counter() < end:
        threads = [threading.Thread(target=one) for _ in range(rng.randint(1, 6))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        came += len(threads)
    print(json.dumps({"viewers": came}))


def soak(minutes: float, out: Path) -> None:
    """BlazeFace on a 30 fps camera, served, with viewers coming and going for `minutes`: the
    process's resident memory over time (goal: flat after the first minute)."""
    import cv2

    from edgekit.runtime.pipeline import Pipeline, RunOptions
    from edgekit.runtime.serve import ServeOptions
    from edgekit.runtime.sources.live import LiveSource

    video = make_video(Path(out).with_suffix(".avi"), 30)
    cap = cv2.VideoCapture(str(video))
    frame = cap.read()[1]
    cap.release()
    video.unlink()
    source = LiveSource("clock camera", lambda: ClockCamera(frame, 30.0))
    run = Pipeline.open(FACE, source, RunOptions(serve=ServeOptions(port=0, stall=2.0)))
    thread = threading.Thread(target=lambda: [None for _ in run], daemon=True)
    thread.start()
    seconds = minutes * 60
    viewers = subprocess.Popen(
        [sys.executable, __file__, "--churn", run.url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    samples, start = [], time.perf_counter()
    while viewers.poll() is None:
        time.sleep(10)
        rss = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20
        hub = run.server.hub
        samples.append(
            {
                "s": round(time.perf_counter() - start),
                "rss_mb": round(rss, 2),
                "streams": len(run.server.streams),
            }
        )
        print(samples[-1], flush=True)
    came = json.loads(viewers.communicate()[0])["viewers"]
    feed = hub.feeds[0]
    after_warmup = [x["rss_mb"] for x in samples if x["s"] >= 60] or [samples[0]["rss_mb"]]
    result = {
        "minutes": minutes,
        "viewers_came": came,
        "stalled_dropped": feed.dropped_viewers,
        "refused_503": feed.refused,
        "jpeg_encoded": feed.encoded,
        "processed": feed.processed,
        "rss_mb_first_after_warmup": after_warmup[0],
        "rss_mb_end": samples[-1]["rss_mb"],
        "rss_mb_max_after_warmup": max(after_warmup),
        "samples": samples,
    }
    source.close()
    thread.join(10)
    run.close()
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{came} viewers in {minutes:g} min: RSS {result['rss_mb_first_after_warmup']} MB after a minute, "
        f"{result['rss_mb_end']} MB at the end; saved {out}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", type=Path, help="the quickstart's model_int8.tflite")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=900, help="frames of the 640x480 video")
    ap.add_argument("--delay-seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    ap.add_argument("--viewers", nargs=2, metavar=("N", "URL"), help=argparse.SUPPRESS)
    ap.add_argument("--client-delays", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--churn", nargs=2, metavar=("URL", "SECONDS"), help=argparse.SUPPRESS)
    ap.add_argument("--soak-minutes", type=float, help="only the soak: viewers coming and going this long")
    args = ap.parse_args()
    if args.viewers:
        return viewers(args.viewers[1], int(args.viewers[0]))
    if args.client_delays:
        return client_delays(args.client_delays[0], float(args.client_delays[1]))
    if args.churn:
        return churn(args.churn[0], float(args.churn[1]), args.seed)
    if args.soak_minutes:
        return soak(args.soak_minutes, ROOT / "bench" / "results" / "serve-soak.json")

    from edgekit.fileio import temp_dir
    from edgekit.runtime import hostinfo

    host = hostinfo.host()
    print(
        f"host: {host['cpu']['model']}, {host['cpu']['cores']} cores, flags {' '.join(host['cpu']['flags'])}"
    )
    models = {"blazeface": FACE}
    if args.mnist:
        models["mnist"] = args.mnist
    work = temp_dir("bench-serve")
    video = make_video(work / "video.avi", args.frames)
    short = make_video(work / "short.avi", 300)
    result = {
        "host": host,
        "video": "640x480 MJPG, photos sliding",
        "frames": args.frames,
        "rounds": args.rounds,
        "throughput": throughput(models, video, args.rounds, args.seed),
        "publish_us_per_frame": round(publish_cost(), 3),
        "delay_blazeface_30fps": delay(FACE, video, args.delay_seconds),
        "several_sources": several(models, short, live_seconds=6.0),
        "load_average_end": hostinfo.load_average(),
        "cpu_flags_grep": sorted(
            set(re.findall(r"avx512[a-z_]*|avx2|vnni", Path("/proc/cpuinfo").read_text()))
        ),
    }
    for name, t in result["throughput"].items():
        ratios = ", ".join(f"{k} {v:.3f}" for k, v in t["fps_ratio_to_run"].items())
        cpu = ", ".join(f"{k} {v:.3f}" for k, v in t["cpu_ratio_to_run"].items())
        print(f"{name}: processed fps / plain run's: {ratios}; CPU per frame / plain run's: {cpu}")
    for name, t in result["throughput"].items():
        per_frame_us = t["cpu_ms_per_frame_median"]["run-0"] * 1e3
        share = result["publish_us_per_frame"] / per_frame_us
        print(
            f"{name}: --serve with no viewer adds {result['publish_us_per_frame']:.2f} us to the run's thread per frame ({share:.2%})"
        )
    d = result["delay_blazeface_30fps"]
    print(f"capture to browser: {d['browser']}; to an HTTP client: {d['http_client']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
