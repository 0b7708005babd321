"""Network streams (RTSP, HTTP(S) MJPEG or HLS, RTMP) through OpenCV's FFmpeg backend, read live.

Opening is bounded twice: FFmpeg's own open/read timeouts where OpenCV passes them on, and a
wall-clock guard around the open call, so an unreachable URL ends with one sentence, never a hang.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from edgekit.errors import SourceError, first_line
from edgekit.runtime.sources import SOURCES, SourceKind, SourceOptions, needs_video_decoder
from edgekit.runtime.sources.live import Backoff, LiveSource

SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
_URL = re.compile(rf"^(?:{'|'.join(SCHEMES)})://", re.IGNORECASE)
_GUARD_SLACK = 2.0  # seconds past --timeout before the guard gives up on FFmpeg's own timeout


def is_stream_url(spec: str) -> bool:
    """Whether `spec` is a URL this source reads."""
    return bool(_URL.match(spec))


def redact(url: str) -> str:
    """The URL with any password replaced, fit to print (rtsp://user:secret@cam -> rtsp://user:***@cam)."""
    return re.sub(r"^([a-z]+://[^:/@]+):[^@/]*@", r"\1:***@", url, flags=re.IGNORECASE)


def _quiet_opencv() -> None:
    """Keep OpenCV's own warnings off the terminal: failures are reported as sentences."""
    import cv2

    if cv2.utils.logging.getLogLevel() > cv2.utils.logging.LOG_LEVEL_ERROR:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def open_stream(url: str, timeout: float) -> Any:
    """An opened `cv2.VideoCapture` on `url`, or SourceError within about `timeout` seconds."""
    import cv2

    _quiet_opencv()
    ms = int(timeout * 1000)
    params = []
    for prop in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
        if hasattr(cv2, prop):  # OpenCV >= 4.6 passes these to FFmpeg
            params += [getattr(cv2, prop), ms]
    shown = redact(url)
    lock, box, done = threading.Lock(), {}, threading.Event()

    def work() -> None:
        try:
            cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        except Exception as e:  # cv2.error from a backend that cannot parse the URL
            box["error"] = first_line(e)
            done.set()
            return
        with lock:
            if box.get("abandoned"):
                cap.release()
                return
            box["cap"] = cap
        done.set()

    start = time.perf_counter()
    threading.Thread(target=work, name=f"edgekit-open {shown}", daemon=True).start()
    answered = done.wait(timeout + _GUARD_SLACK)
    if not answered or ("cap" in box and not box["cap"].isOpened() and _late(start, timeout)):
        with lock:
            box["abandoned"] = True
            cap = box.pop("cap", None)
        if cap is not None:
            cap.release()
        raise SourceError(
            f"stream {shown} did not answer within {timeout:g} s: check the address and that the "
            "server is up (--timeout sets the wait)"
        )
    cap = box.get("cap")
    if cap is None or not cap.isOpened():
        if cap is not None:
            cap.release()
        detail = f" ({box['error']})" if "error" in box else ""
        raise SourceError(
            f"cannot open stream {shown}{detail}: nothing answered there, or it sent no video "
            "OpenCV can read; check the URL and that the server is up"
        )
    return cap


def _late(start: float, timeout: float) -> bool:
    """Whether an open that failed took as long as the timeout (FFmpeg gave up waiting)."""
    return time.perf_counter() - start >= 0.9 * timeout


class Stream(LiveSource):
    """A network stream: the newest frame only, reopened with back-off when it drops out.

    A URL that names a finite file (an .mp4 over HTTP reports a frame count) is played by its own
    clock and ends at its end instead of being reopened."""

    kind = "stream"

    def __init__(self, url: str, options: SourceOptions | None = None) -> None:
        import cv2

        options = options or SourceOptions()
        self.url = url
        cap = open_stream(url, options.timeout)
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or (options.fps or 0.0)
        finite = 0 < frames < 1e12  # live streams report 0, or a negative sentinel
        first = [cap]

        def open_() -> Any:
            if first:  # the capture opened above, so the open error comes before the thread starts
                return first.pop()
            return open_stream(url, options.timeout)

        super().__init__(
            redact(url),
            open_,
            fps=options.fps,
            size=options.size,
            pace=(self.fps or 30.0) if finite else None,
            ends=finite,
            backoff=Backoff(give_up=options.reconnect),
            join_timeout=options.timeout + _GUARD_SLACK,
        )


SOURCES.add(
    SourceKind(
        "stream",
        "an RTSP or HTTP(S) stream URL such as rtsp://camera.local/stream",
        is_stream_url,
        Stream,
        options=("fps", "size", "reconnect", "timeout"),
        missing=needs_video_decoder,
    ),
)
