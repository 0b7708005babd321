"""A camera by index, through OpenCV."""

from __future__ import annotations

import time
from collections.abc import Iterator

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices of the cameras OpenCV can open (probes the first few)."""
    import cv2

    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(i)
        cap.release()
    return found


class Camera(Source):
    kind = "camera"
    live = True

    def __init__(self, spec: str) -> None:
        super().__init__()
        import cv2

        self.index = int(spec)
        self.cap = cv2.VideoCapture(self.index)
        if not self.cap.isOpened():
            self.cap.release()
            found = list_cameras()
            listed = ", ".join(map(str, found)) if found else "none"
            raise SourceError(
                f"no camera at index {self.index}; cameras found: {listed}; try --source video.mp4"
            )

    def __iter__(self) -> Iterator[Item]:
        i = 0
        while self.cap is not None:
            ok, frame = self.cap.read()
            if not ok:
                self.skip(f"camera {self.index}: frame {i} could not be read")
                if self.skipped > 30:
                    break
                continue
            yield Item(frame, i, f"camera {self.index} #{i}", time.perf_counter())
            i += 1

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


SOURCES.add("camera", SourceKind("camera", "a camera index such as 0", lambda s: s.isdigit(), Camera))
