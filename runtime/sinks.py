"""Sinks: where results go. Every sink takes the same typed results. `RunStats` gathers the
counts and times of a run for the summary printed at its end."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgekit.errors import ConfigError, UnsupportedError
from edgekit.fileio import atomic_path, check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sources import Item, Source


class Sink:
    """Base class; a context manager that closes on success and aborts (drops partial files) on error.
    `stopped` becomes true when the user asks a sink to end the run (`q` in the window)."""

    stopped: bool = False

    def write(self, item: Item, prediction: Prediction) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release."""

    def abort(self) -> None:
        """Release after a failure, leaving no half-written output."""
        self.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _describe(result: Any) -> str:
    label, score = getattr(result, "label", None), getattr(result, "score", None)
    if label is None or score is None:
        return str(result)
    box = getattr(result, "box", None)
    where = f" at [{', '.join(f'{v:.0f}' for v in box)}]" if box is not None else ""
    return f"{label} ({score:.3f}){where}"


class TextSink(Sink):
    """One line per input, for people: `name: label (score), ...`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        shown = ", ".join(_describe(r) for r in prediction.results) or "nothing"
        print(f"{item.name}: {shown}", file=self.stream)


# time.perf_counter() -> seconds since the epoch, for timestamps a script can line up with others
_EPOCH_OFFSET = time.time() - time.perf_counter()


def wall_time(perf: float) -> float:
    """A `time.perf_counter()` reading as seconds since the Unix epoch."""
    return perf + _EPOCH_OFFSET


class JsonLinesSink(Sink):
    """One JSON object per input, for scripts: results, capture and result timestamps (Unix
    seconds), end-to-end latency and per-stage times."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        done = prediction.done or time.perf_counter()
        record = {
            "source": item.name,
            "index": item.index,
            "t_capture": round(wall_time(item.t_capture), 6),
            "t_result": round(wall_time(done), 6),
            "latency_ms": round((done - item.t_capture) * 1e3, 3),
            "results": [r.to_dict() for r in prediction.results],
            "times_ms": {k: round(v * 1e3, 4) for k, v in prediction.times.items()},
        }
        print(json.dumps(record, ensure_ascii=False), file=self.stream, flush=True)


Draw = Callable[[np.ndarray, Sequence[Any]], np.ndarray]


class Tee(Sink):
    """Several sinks fed the same results, closed together."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    @property
    def stopped(self) -> bool:  # type: ignore[override]
        return any(sink.stopped for sink in self.sinks)

    def write(self, item: Item, prediction: Prediction) -> None:
        for sink in self.sinks:
            sink.write(item, prediction)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def _annotated(item: Item, prediction: Prediction, draw: Draw) -> np.ndarray:
    frame = item.data
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
        raise ConfigError(f"--save draws on images, but {item.name} is not one")
    return draw(frame.copy(), prediction.results)  # the source's frame stays as it was read


def _imwrite(path: Path, image: np.ndarray) -> None:
    """Write an image atomically (the encoder is chosen by the suffix, kept on the temporary file)."""
    import cv2

    with atomic_path(path, keep_suffix=True) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise ConfigError(f"OpenCV could not write {path}")


class ImageFileSink(Sink):
    """The annotated frame of a single input image, written to one .jpg/.png file."""

    def __init__(self, path: Path, draw: Draw, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path, self.draw, self.written = path, draw, False

    def write(self, item: Item, prediction: Prediction) -> None:
        if self.written:
            raise ConfigError(f"--save {self.path} holds one image: give a folder to save many")
        _imwrite(self.path, _annotated(item, prediction, self.draw))
        self.written = True


class ImageFolderSink(Sink):
    """One annotated image per input, named as the input, in a folder (created)."""

    def __init__(self, folder: Path, draw: Draw, force: bool = False) -> None:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--save {folder} is a file, not a folder")
        check_writable(folder / "x", force=True)
        self.folder, self.draw, self.force = folder, draw, force

    def target(self, item: Item) -> Path:
        name = Path(item.name).name
        if Path(name).suffix.lower() not in _IMAGE_SUFFIXES:  # a video frame or a camera frame
            stem = re.sub(r"[^\w.-]+", "_", Path(item.name.split("#")[0]).stem) or "frame"
            name = f"{stem}_{item.index:06d}.jpg"
        return self.folder / name

    def write(self, item: Item, prediction: Prediction) -> None:
        path = self.target(item)
        check_writable(path, force=self.force)
        _imwrite(path, _annotated(item, prediction, self.draw))


class VideoFileSink(Sink):
    """Annotated frames as a video; the file appears (by rename) only when it is complete."""

    def __init__(self, path: Path, draw: Draw, fps: float = 10.0, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path, self.draw, self.fps = path, draw, fps if fps and fps > 0 else 10.0
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(path, keep_suffix=True))
        self._writer: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, item: Item, prediction: Prediction) -> None:
        import cv2

        frame = _annotated(item, prediction, self.draw)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise ConfigError(f"OpenCV cannot write {self.path.suffix} video here: try --save out.avi")
        if (frame.shape[1], frame.shape[0]) != self._size:  # a folder of mixed sizes
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def close(self) -> None:
        self._release()
        if self._size is None:  # nothing written: leave no empty video behind
            self.abort()
            return
        self._stack.close()

    def abort(self) -> None:
        self._release()
        self._stack.__exit__(ConfigError, ConfigError("aborted"), None)


# a window that cannot open aborts the whole process inside Qt or GTK: try one in a child first
_WINDOW_PROBE = (
    "import cv2, numpy as np\n"
    "cv2.namedWindow('edgekit-probe')\n"
    "cv2.imshow('edgekit-probe', np.zeros((8, 8, 3), np.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)


def opencv_gui(build_info: str | None = None) -> str:
    """The GUI backend OpenCV was built with (QT5, GTK3, WIN32UI, COCOA...), or NONE (headless)."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    found = re.search(r"^\s*GUI:\s*(\S+)", build_info, re.MULTILINE)
    return found.group(1) if found else "NONE"


def check_display() -> None:
    """Raise UnsupportedError when `--show` cannot open a window here; call it before the run starts."""
    if opencv_gui().upper() == "NONE":
        raise UnsupportedError(
            "--show needs OpenCV with a GUI, and this one has none (opencv-python-headless): "
            "`pip install opencv-python` instead, or use --save out.mp4"
        )
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        raise UnsupportedError(
            "--show needs a display and none is set here (no DISPLAY or WAYLAND_DISPLAY): run it in a "
            "desktop session, or use --save out.mp4 or --json"
        )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _WINDOW_PROBE], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        raise UnsupportedError(f"--show could not open a window on display {display} within 30 s") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        why = next((line for line in lines if "could not" in line.lower()), lines[0] if lines else "")
        raise UnsupportedError(
            f"--show cannot open a window on display {display}"
            + (f" ({why})" if why else "")
            + ": check the display, or use --save out.mp4"
        )


class WindowSink(Sink):
    """An OpenCV window showing each frame with its results drawn and the frame rate and latency in
    a corner; `q` or Esc in the window, or closing it, ends the run."""

    def __init__(self, draw: Draw, title: str = "edgekit") -> None:
        import cv2

        self.draw, self.title = draw, title
        self._fps = 0.0
        self._last: float | None = None
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)

    def write(self, item: Item, prediction: Prediction) -> None:
        import cv2

        frame = _annotated(item, prediction, self.draw)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        now = time.perf_counter()
        if self._last is not None and now > self._last:  # smoothed, so the figure can be read
            rate = 1.0 / (now - self._last)
            self._fps = rate if self._fps == 0 else 0.9 * self._fps + 0.1 * rate
        self._last = now
        latency = ((prediction.done or now) - item.t_capture) * 1e3
        overlay(frame, f"{self._fps:.1f} fps  {latency:.0f} ms")
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.stopped = True

    def close(self) -> None:
        import cv2

        with contextlib.suppress(cv2.error):  # already closed by the user
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


def overlay(frame: np.ndarray, text: str) -> np.ndarray:
    """Write `text` in the top-right corner, white on a dark band so it reads on any frame."""
    import cv2

    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (w, h), base = cv2.getTextSize(text, font, scale, thick)
    x = max(0, frame.shape[1] - w - 8)
    cv2.rectangle(frame, (x - 4, 2), (frame.shape[1] - 2, h + base + 8), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, h + 6), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def save_sink(path: Path, source: Source, draw: Draw, force: bool = False) -> Sink:
    """The sink for `--save PATH`: one image, a folder of images, or a video, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _IMAGE_SUFFIXES:
        paths = getattr(source, "paths", None)
        if paths is None or len(paths) != 1:
            many = f"{len(paths)} images" if paths else f"the frames of a {source.kind}"
            raise ConfigError(
                f"--save {path} holds one image, not {many}: save to a folder "
                f"or a video ({', '.join(_FOURCC)})"
            )
        return ImageFileSink(path, draw, force)
    if suffix in _FOURCC:
        return VideoFileSink(path, draw, getattr(source, "fps", 0.0) or 10.0, force)
    if suffix and not path.is_dir():
        raise ConfigError(
            f"--save {path}: give an image ({', '.join(_IMAGE_SUFFIXES)}), a video "
            f"({', '.join(_FOURCC)}) or a folder"
        )
    return ImageFolderSink(path, draw, force)


def open_sinks(
    *,
    json_out: bool,
    save: Path | None,
    source: Source,
    draw: Draw,
    force: bool = False,
    show: bool = False,
) -> Sink:
    """The sinks `edgekit run` writes to: text or JSON lines on stdout, plus `--save` and `--show`."""
    sinks: list[Sink] = [JsonLinesSink() if json_out else TextSink()]
    if save is not None:
        sinks.append(save_sink(save, source, draw, force))
    if show:
        sinks.append(WindowSink(draw, title=f"edgekit: {getattr(source, 'name', source.kind)}"))
    return Tee(sinks)


class RunStats:
    """What a run did: items taken from the source, end-to-end latency (capture to result) and
    per-stage times, and the source's own counters, for the summary at the end."""

    def __init__(self) -> None:
        self.processed = 0
        self.latencies: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.first_capture: float | None = None
        self.first_result: float | None = None
        self.last_result: float | None = None

    def add(self, item: Item, prediction: Prediction) -> None:
        """Record one processed item."""
        done = prediction.done or time.perf_counter()
        self.processed += 1
        if self.first_capture is None:
            self.first_capture, self.first_result = item.t_capture, done
        self.last_result = done
        self.latencies.append(done - item.t_capture)
        for stage, seconds in prediction.times.items():
            self.stages.setdefault(stage, []).append(seconds)
        # time between capture and the start of preprocessing: the item's wait for the model
        self.stages.setdefault("wait", []).append(
            max(0.0, done - item.t_capture - sum(prediction.times.values()))
        )

    def summary(self, source: Source) -> dict[str, Any]:
        """Frames in, processed, dropped, skipped, reconnects, throughput, latency p50/p99, stage p50s."""

        def count(name: str, default: int = 0) -> int:  # live sources keep counters; others do not
            value = getattr(source, name, None)
            return value if isinstance(value, int) else default

        skipped = source.skipped
        frames_in = count("read", -1)
        if frames_in < 0:  # a file source hands over every item it reads
            frames_in = self.processed + skipped
        seconds = (self.last_result - self.first_capture) if self.processed else 0.0
        # sustained throughput: the rate results came out at, first to last
        between = (self.last_result - self.first_result) if self.processed > 1 else 0.0
        ms = np.asarray(self.latencies) * 1e3
        out: dict[str, Any] = {
            "frames_in": int(frames_in),
            "processed": self.processed,
            "dropped": count("dropped"),
            "skipped": skipped,
            "reconnects": count("reconnects"),
            "seconds": round(seconds, 3),
            "fps": round((self.processed - 1) / between, 2) if between > 0 else None,
            "latency_ms": {
                "p50": round(float(np.percentile(ms, 50)), 3) if ms.size else None,
                "p99": round(float(np.percentile(ms, 99)), 3) if ms.size else None,
            },
            "stages_ms_p50": {k: round(float(np.median(v)) * 1e3, 4) for k, v in self.stages.items() if v},
        }
        error = getattr(source, "error", None)
        if error:
            out["error"] = error
        return out


def describe_summary(summary: dict[str, Any]) -> str:
    """The summary as one line for people."""
    s = summary
    line = (
        f"{s['frames_in']} frames in, {s['processed']} processed, {s['dropped']} dropped, "
        f"{s['skipped']} skipped, {s['reconnects']} reconnects in {s['seconds']:.2f} s"
    )
    if s["fps"]:
        line += f" ({s['fps']:.1f} fps)"
    lat = s["latency_ms"]
    if lat["p50"] is not None:
        line += f"; latency p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms (capture to result)"
    if s["stages_ms_p50"]:
        parts = ", ".join(f"{k} {v:.2f}" for k, v in s["stages_ms_p50"].items())
        line += f"; p50 ms: {parts}"
    return line
