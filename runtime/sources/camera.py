"""A camera by index, through OpenCV, read live: the newest frame only, reopened if it drops out."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, SourceKind, SourceOptions
from edgekit.runtime.sources.live import Backoff, LiveSource


@contextlib.contextmanager
def _opencv_silent() -> Iterator[None]:
    """Hold back OpenCV's own log lines ("Camera index out of range") while probing: a missing
    camera is reported as one sentence."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices of the cameras OpenCV can open (probes the first few)."""
    import cv2

    found = []
    with _opencv_silent():
        for i in range(max_index):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(i)
            cap.release()
    return found


def open_camera(index: int, options: SourceOptions, first: bool = True) -> Any:
    """An opened `cv2.VideoCapture` for camera `index`, asked for the size and rate in `options`."""
    import cv2

    with _opencv_silent():
        cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        cap.release()
        if not first:  # reconnecting: the run goes on trying, no need to probe the others
            raise SourceError(f"camera {index} cannot be opened")
        found = list_cameras()
        listed = ", ".join(map(str, found)) if found else "none"
        raise SourceError(f"no camera at index {index}; cameras found: {listed}; try --source video.mp4")
    if options.size:  # a request: a camera that cannot do it sends its nearest, which we resize
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, options.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, options.size[1])
    if options.fps:
        cap.set(cv2.CAP_PROP_FPS, options.fps)
    return cap


class Camera(LiveSource):
    kind = "camera"

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        options = options or SourceOptions()
        self.index = int(spec)
        opened = [False]

        def open_() -> Any:
            import cv2

            cap = open_camera(self.index, options, first=not opened[0])
            opened[0] = True
            self.fps = options.fps or float(cap.get(cv2.CAP_PROP_FPS) or 0.0)  # for --save video
            return cap

        super().__init__(
            f"camera {self.index}",
            open_,
            fps=options.fps,
            size=options.size,
            backoff=Backoff(give_up=options.reconnect),
        )


def _camera_missing() -> str:
    """A camera needs OpenCV and, on Linux, a video device (checked without opening it)."""
    from edgekit.runtime.sources import needs_opencv

    missing = needs_opencv()
    if missing or not sys.platform.startswith("linux"):
        return missing
    import glob

    return "" if glob.glob("/dev/video*") else "no /dev/video* device"


SOURCES.add(
    SourceKind(
        "camera",
        "a camera index such as 0",
        lambda s: s.isdigit(),
        Camera,
        options=("fps", "size", "reconnect"),
        missing=_camera_missing,
    ),
)
