"""What a run and its server share: each source's newest result, its figures over the last seconds,
histograms for `/metrics`, a short log of results for `/results`, and the JPEG encoder.

The run's thread only stores references and counts (`Hub.publish`: about 2 µs a frame, with or
without viewers). Everything that costs is done elsewhere and only when asked: the encoder thread
draws and encodes a source's newest frame while someone watches it, at most once per processed
frame and at most `max_fps` a second; the server's thread turns results into JSON while someone
reads `/results`, and computes figures while someone looks at them.

Threads: the run's thread writes; the encoder and the server's event loop read. Each shared value
is one reference replaced whole (a tuple), an int counter, or a deque read with `list()` (one step
under the GIL), so no lock is held on the run's path.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import Draw
from edgekit.runtime.sources import Item
from edgekit.runtime.sources.many import Feed

WINDOW_S = 5.0  # the "last seconds" the live figures are over
WINDOW_N = 4096  # results kept for them, at most (the window is shorter above ~800 results/s)
LOG_N = 256  # results kept for /results readers that fall behind (they skip older ones)
# Prometheus histogram bounds, seconds: from a fast classifier's 0.5 ms to a slow stream's 10 s
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Counts per bucket (upper bounds `BOUNDS`, then +Inf), a sum and a count, as Prometheus
    histograms hold them; observed on the run's thread, read on the server's."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BOUNDS, seconds)] += 1
        self.sum += seconds

    def snapshot(self) -> tuple[list[int], float]:
        """Cumulative bucket counts (the last is the count) and the sum."""
        counts, total = list(self.counts), self.sum
        for i in range(1, len(counts)):
            counts[i] += counts[i - 1]
        return counts, total


class FeedState:
    """One source as the server sees it: its newest result, recent figures and its JPEG."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.index = feed.index
        self.name = feed.name
        self.processed = 0
        self.failed = 0
        self.latest: tuple[int, Item, Prediction] | None = None  # (processed count, item, prediction)
        self.window: deque[tuple[float, float, dict[str, float]]] = deque(maxlen=WINDOW_N)
        self.latency = Histogram()
        self.stages: dict[str, Histogram] = {}
        # the encoder's: (processed count it was made for, JPEG bytes, capture time)
        self.jpeg: tuple[int, bytes, float] | None = None
        self.encoded = 0
        self.next_encode = 0.0
        # the server's: viewers of /stream.mjpg, snapshots waiting for a newer frame
        self.viewers = 0
        self.waiting = 0
        self.dropped_viewers = 0  # stalled viewers let go
        self.refused = 0  # viewers refused (503: --max-viewers)

    @property
    def watched(self) -> bool:
        return bool(self.viewers or self.waiting)

    @property
    def frames_in(self) -> int:
        read = self.feed.read
        return read if read is not None else self.processed + self.failed + self.feed.skipped


class Hub:
    """The state shared by a run and its server. `info` is what the page shows of the model (its
    task, labels, backend, device, threads); `picture` says whether inputs are images (else the
    page shows a rolling log of results)."""

    def __init__(
        self,
        feeds: Sequence[Feed],
        draw: Draw,
        info: dict[str, Any],
        picture: bool,
        *,
        max_fps: float,
        quality: int,
    ) -> None:
        self.feeds = [FeedState(f) for f in feeds]
        self.draw = draw
        self.info = info
        self.picture = picture
        self.max_fps = max_fps
        self.quality = quality
        self.log: deque[tuple[int, int, str, int, float, Prediction]] = deque(maxlen=LOG_N)
        self.seq = 0  # results logged so far
        self.started = time.perf_counter()
        self.running = False
        self.ended: str | None = None  # why the run is over
        self.on_jpeg: Callable[[int], None] | None = None  # the server's: a feed has a new JPEG
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._encoder: threading.Thread | None = None
        self._inputs: deque[tuple[float, list[int]]] = deque()  # (when, frames in per feed): input fps

    # -- the run's thread ----------------------------------------------------------------------

    def publish(self, item: Item, prediction: Prediction) -> None:
        """Record one result (the run's thread; references and counts only)."""
        f = self.feeds[item.feed]
        f.processed += 1
        f.latest = (f.processed, item, prediction)
        done = prediction.done or time.perf_counter()
        latency = done - item.t_capture
        f.window.append((done, latency, prediction.times))
        f.latency.observe(latency)
        for stage, seconds in prediction.times.items():
            hist = f.stages.get(stage)
            if hist is None:
                hist = f.stages[stage] = Histogram()
            hist.observe(seconds)
        self.seq += 1
        self.log.append((self.seq, item.feed, item.name, item.index, item.t_capture, prediction))
        if f.viewers or f.waiting:
            self._wake.set()

    def fail(self, item: Item) -> None:
        """Count an input that gave no result."""
        self.feeds[item.feed].failed += 1

    # -- the encoder thread ----------------------------------------------------------------------

    def start(self) -> None:
        if self.picture and self._encoder is None:
            self._encoder = threading.Thread(target=self._encode_loop, name="edgekit-serve jpeg", daemon=True)
            self._encoder.start()

    def want_frames(self) -> None:
        """A viewer came, or wants a newer frame: wake the encoder."""
        self._wake.set()

    def _encode_loop(self) -> None:
        import cv2

        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a frame published while we look sets it again
            wait = 0.5
            for f in self.feeds:
                latest = f.latest
                if not f.watched or latest is None or (f.jpeg is not None and latest[0] <= f.jpeg[0]):
                    continue
                now = time.perf_counter()
                if now < f.next_encode:  # at most max_fps a second: come back when it is due
                    wait = min(wait, f.next_encode - now)
                    continue
                f.next_encode = now + 1.0 / self.max_fps
                seq, item, prediction = latest
                jpeg = self._encode(item, prediction, cv2, params)
                if jpeg is None:
                    continue
                f.jpeg = (seq, jpeg, item.t_capture)
                f.encoded += 1
                if self.on_jpeg is not None:
                    self.on_jpeg(f.index)
            self._wake.wait(wait)

    def _encode(self, item: Item, prediction: Prediction, cv2: Any, params: list[int]) -> bytes | None:
        frame = item.data
        if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
            return None
        try:
            drawn = self.draw(frame.copy(), prediction.results)
            ok, buf = cv2.imencode(".jpg", drawn, params)
        except Exception:  # a frame OpenCV cannot encode (an odd dtype): no picture for it
            return None
        return buf.tobytes() if ok else None

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._encoder is not None and self._encoder is not threading.current_thread():
            self._encoder.join(5.0)

    # -- the server's thread ---------------------------------------------------------------------

    def entries_after(self, seq: int) -> list[tuple[int, int, str, int, float, Prediction]]:
        """Logged results newer than `seq` (those that fell out of the log are gone)."""
        return [e for e in list(self.log) if e[0] > seq]

    def problems(self) -> list[str]:
        """Why the run is not healthy now (empty: it is): not started, over, or a source down."""
        if self.ended is not None:
            return [self.ended]
        if not self.running:
            return ["the run has not started"]
        return [why for f in self.feeds if (why := f.feed.down)]

    def figures(self) -> dict[str, Any]:
        """The live figures: per source, frames in, processed, dropped, rates and latency p50/p99
        (capture to result, and per stage) over the last `WINDOW_S` seconds."""
        now = time.perf_counter()
        frames_in = [f.frames_in for f in self.feeds]
        self._inputs.append((now, frames_in))
        while len(self._inputs) > 2 and self._inputs[1][0] <= now - WINDOW_S:
            self._inputs.popleft()
        then, before = self._inputs[0]
        feeds = []
        for f in self.feeds:
            recent = [w for w in list(f.window) if w[0] >= now - WINDOW_S]
            fps = None
            if len(recent) > 1 and recent[-1][0] > recent[0][0]:
                fps = round((len(recent) - 1) / (recent[-1][0] - recent[0][0]), 2)
            stages: dict[str, dict[str, float | None]] = {"latency": _p50_p99([w[1] for w in recent])}
            for stage in f.stages:
                stages[stage] = _p50_p99([w[2].get(stage, 0.0) for w in recent])
            feeds.append(
                {
                    "feed": f.index,
                    "name": f.name,
                    "state": f.feed.down or ("running" if self.ended is None else "ended"),
                    "frames_in": frames_in[f.index],
                    "input_fps": round((frames_in[f.index] - before[f.index]) / (now - then), 2)
                    if now > then
                    else None,
                    "processed": f.processed,
                    "dropped": f.feed.dropped,
                    "skipped": f.feed.skipped,
                    "failed": f.failed,
                    "reconnects": f.feed.reconnects,
                    "fps": fps,
                    "ms": stages,
                    "viewers": f.viewers,
                }
            )
        return {"uptime_s": round(now - self.started, 1), "feeds": feeds, "ended": self.ended}


def _p50_p99(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p99": None}
    p50, p99 = np.percentile(np.asarray(seconds, dtype=np.float64), [50, 99])
    return {"p50": round(float(p50) * 1e3, 3), "p99": round(float(p99) * 1e3, 3)}
