"""`--show`: an OpenCV window with each frame, its results drawn, and the frame rate and latency in
a corner. Whether a window can open here is checked before the run starts."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgekit.errors import UnsupportedError
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Draw, Sink, SinkContext, SinkKind, annotated
from edgekit.runtime.sources import Item

# a window that cannot open aborts the whole process inside Qt or GTK: try one in a child first
_WINDOW_PROBE = (
    "import cv2, numpy as np\n"
    "cv2.namedWindow('edgekit-probe')\n"
    "cv2.imshow('edgekit-probe', np.zeros((8, 8, 3), np.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)
# displays a probe opened a window on in this process: the CLI checks before the model loads, and
# the pipeline checks again before it opens the window; one child process is enough
_opened_on: set[str] = set()


def opencv_gui(build_info: str | None = None) -> str:
    """The GUI backend OpenCV was built with (QT5, GTK3, WIN32UI, COCOA...), or NONE (headless)."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    found = re.search(r"^\s*GUI:\s*(\S+)", build_info, re.MULTILINE)
    return found.group(1) if found else "NONE"


def check_display() -> None:
    """Raise UnsupportedError when `--show` cannot open a window here; call it before the run starts."""
    # no display first: where there is none (a container, a Pi over ssh), installing an OpenCV with
    # a GUI would not help, so that advice comes only where a window could open
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        raise UnsupportedError(
            "--show needs a display and none is set here (no DISPLAY or WAYLAND_DISPLAY): run it in a "
            "desktop session, or use --save out.mp4 or --json"
        )
    if opencv_gui().upper() == "NONE":
        raise UnsupportedError(
            "--show needs OpenCV with a GUI, and this one has none (opencv-python-headless): "
            "`pip install opencv-python` instead, or use --save out.mp4"
        )
    if str(display) in _opened_on:
        return
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
    _opened_on.add(str(display))


def overlay(frame: np.ndarray, text: str) -> np.ndarray:
    """Write `text` in the top-right corner, white on a dark band so it reads on any frame."""
    import cv2

    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (w, h), base = cv2.getTextSize(text, font, scale, thick)
    x = max(0, frame.shape[1] - w - 8)
    cv2.rectangle(frame, (x - 4, 2), (frame.shape[1] - 2, h + base + 8), (0, 0, 0), -1)
    cv2.putText(frame, text, (x, h + 6), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return frame


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

        frame = annotated(item, prediction, self.draw)
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


def _open(context: SinkContext, target: Path | None) -> Sink:
    source = context.source
    return WindowSink(context.draw, title=f"edgekit: {getattr(source, 'name', source.kind)}")


SINKS.add(SinkKind("window", "a window on the screen (--show)", _open, check=check_display))
