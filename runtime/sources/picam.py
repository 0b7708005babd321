"""A Raspberry Pi camera (CSI: Camera Module 2/3, HQ, Global Shutter) through Picamera2, read live:
the newest frame only, reopened if it drops out.

Picamera2 comes from the Pi's own apt archive (`python3-picamera2`, with libcamera), not from PyPI,
so it is imported only when a `picam` source is opened. A USB camera needs none of this: `--source 0`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from edgekit.errors import SourceError, first_line
from edgekit.runtime.sources import SOURCES, SourceKind, SourceOptions
from edgekit.runtime.sources.live import Backoff, LiveSource

DEFAULT_SIZE = (640, 480)  # what a USB camera gives by default; Picamera2's own default is 1280x720
MISSING = (
    "the picam source needs Picamera2: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "(in a venv made with --system-site-packages), or use a USB camera with --source 0"
)


def is_picam(spec: str) -> bool:
    """'picam' or 'picam:N'."""
    return spec == "picam" or (spec.startswith("picam:") and spec[6:].isdigit())


def picam_index(spec: str) -> int:
    return int(spec[6:]) if spec.startswith("picam:") else 0


def import_picamera2() -> Any:
    """The `Picamera2` class, or a SourceError saying how to get it."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise SourceError(MISSING) from None
    return Picamera2


def list_picams() -> list[str] | None:
    """The Pi cameras libcamera sees ('0: imx708'), or None when Picamera2 is not installed."""
    try:
        from picamera2 import Picamera2
    except ImportError:
        return None
    try:
        cameras = Picamera2.global_camera_info()
    except Exception:  # libcamera present but not working (no camera stack): nothing to list
        return []
    return [f"{c.get('Num', i)}: {c.get('Model', 'camera')}" for i, c in enumerate(cameras)]


class _Picamera2Capture:
    """A started Picamera2 camera with the `read()`/`release()` shape that LiveSource reads."""

    def __init__(self, camera: Any) -> None:
        self._camera = camera

    def read(self) -> tuple[bool, Any]:
        # "RGB888" is libcamera's name for 24-bit pixels stored B, G, R in memory: OpenCV's BGR
        return True, self._camera.capture_array("main")

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self._camera.stop()
        with contextlib.suppress(Exception):
            self._camera.close()


def open_picamera(index: int, options: SourceOptions, first: bool = True) -> _Picamera2Capture:
    """Camera `index` configured for BGR frames at `--size` (default 640x480) and `--fps`, started."""
    picamera2 = import_picamera2()
    if first:  # reconnecting: the camera was there before, no need to list them again
        cameras = list_picams() or []
        if index >= len(cameras):
            listed = ", ".join(cameras) if cameras else "none"
            raise SourceError(
                f"no Pi camera {index}; Pi cameras found: {listed}; try --source 0 for a USB camera"
            )
    camera = None
    try:
        camera = picamera2(camera_num=index)
        controls = {"FrameRate": float(options.fps)} if options.fps else {}
        config = camera.create_video_configuration(
            main={"size": tuple(options.size or DEFAULT_SIZE), "format": "RGB888"}, controls=controls
        )
        camera.configure(config)
        camera.start()
    except Exception as e:  # libcamera's errors (camera busy, unsupported size) as one sentence
        if camera is not None:
            _Picamera2Capture(camera).release()
        raise SourceError(f"Pi camera {index} cannot be opened: {first_line(e)}") from None
    return _Picamera2Capture(camera)


class PiCamera(LiveSource):
    kind = "picam"

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        options = options or SourceOptions()
        self.index = picam_index(spec)
        self.fps = float(options.fps or 30.0)  # for --save video: Picamera2's video default is 30
        opened = [False]

        def open_() -> _Picamera2Capture:
            cap = open_picamera(self.index, options, first=not opened[0])
            opened[0] = True
            return cap

        super().__init__(
            f"Pi camera {self.index}",
            open_,
            fps=options.fps,
            size=options.size,  # a sensor mode that cannot give the size exactly is resized
            backoff=Backoff(give_up=options.reconnect),
        )


def _picamera2_missing() -> str:
    """Picamera2 importable (found without importing it: that starts libcamera)."""
    from edgekit.deps import installed

    return "" if installed("picamera2") else "Picamera2 is not installed: sudo apt install python3-picamera2"


SOURCES.add(
    SourceKind(
        "picam",
        "picam (or picam:N) for a Raspberry Pi camera, through Picamera2",
        is_picam,
        PiCamera,
        options=("fps", "size", "reconnect"),
        missing=_picamera2_missing,
    ),
)
