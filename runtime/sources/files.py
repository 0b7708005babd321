"""File sources: one image, a folder or glob of images, a video file (frame by frame, or played
by its own clock as a live source with --realtime)."""

from __future__ import annotations

import glob
import os
import stat
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError, SourceError, first_line
from edgekit.runtime.sources import (
    SOURCES,
    Item,
    Source,
    SourceKind,
    SourceOptions,
    needs_opencv,
    needs_video_decoder,
)
from edgekit.runtime.sources.live import LiveSource

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_GLOB_CHARS = set("*?[")


# A 4K frame is 8.3 million pixels; this is twelve of them. A header claiming more (100000x100000)
# is refused before decoding, which would otherwise try to allocate tens of GB.
MAX_PIXELS = 100_000_000


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header (None for other formats or a short header):
    a few bytes tell what decoding would cost before any of it is paid."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:2] == b"BM" and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head[:2] == b"\xff\xd8":
        i = 2
        while i + 9 <= len(head):
            if head[i] != 0xFF:
                return None
            marker = head[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
                h, w = struct.unpack(">HH", head[i + 5 : i + 9])
                return w, h
            i += 2 + struct.unpack(">H", head[i + 2 : i + 4])[0]
    return None


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file, or raise DataError saying why not: not a regular file (a FIFO named
    .png would block forever), larger than `max_pixels` by its header, or not decodable."""
    import cv2

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise DataError(f"{path} is not a regular file")
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise DataError(f"{path} is empty")
    size = image_size(data[:65536].tobytes())
    if size is not None and size[0] * size[1] > max_pixels:
        raise DataError(
            f"{path} claims {size[0]}x{size[1]} pixels, more than the limit of {max_pixels:,} (--max-pixels)"
        )
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except (cv2.error, MemoryError) as e:
        raise DataError(f"{path} could not be decoded: {first_line(e)}") from None
    if image is None:
        raise DataError(f"{path} is not an image OpenCV can decode")
    if image.shape[0] * image.shape[1] > max_pixels:  # a format whose header was not read here
        raise DataError(f"{path} has {image.shape[1]}x{image.shape[0]} pixels, more than {max_pixels:,}")
    return image


def decode_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """Decode an image file (None if it cannot be decoded or is over the pixel limit)."""
    try:
        return read_image(path, max_pixels)
    except DataError:
        return None


class ImageFiles(Source):
    kind = "images"

    def __init__(
        self, paths: list[Path], origin: str, max_pixels: int = MAX_PIXELS, first: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.max_pixels = max_pixels
        self._first = first  # the one image `_open_image` already decoded: not decoded twice
        if not paths:
            raise SourceError(f"no images in {origin} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.paths = paths

    def __iter__(self) -> Iterator[Item]:
        for i, path in enumerate(self.paths):
            if i == 0 and self._first is not None:
                image, self._first = self._first, None
            else:
                try:
                    image = read_image(path, self.max_pixels)
                except DataError as e:  # a bad file in a folder is skipped and counted; the run goes on
                    self.skip(str(e))
                    continue
            yield Item(image, i, str(path), time.perf_counter())


def _max_pixels(options: SourceOptions | None) -> int:
    return options.max_pixels if options is not None and options.max_pixels else MAX_PIXELS


def _open_image(spec: str, options: SourceOptions | None = None) -> Source:
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"image {path} does not exist")
    try:
        image = read_image(path, _max_pixels(options))  # one image: its error is the run's, said now
    except DataError as e:
        raise SourceError(str(e)) from None
    return ImageFiles([path], spec, _max_pixels(options), first=image)


def _open_images(spec: str, options: SourceOptions | None = None) -> Source:
    if _GLOB_CHARS & set(spec):
        paths = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise SourceError(f"folder {folder} does not exist")
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
    return ImageFiles([p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES], spec, _max_pixels(options))


def open_video(spec: str) -> Any:
    """An opened `cv2.VideoCapture` on a video file."""
    import cv2

    if not Path(spec).exists():
        raise SourceError(f"video {spec} does not exist")
    cap = cv2.VideoCapture(spec)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"{spec} is not a video OpenCV can open")
    return cap


class VideoFile(Source):
    """Every frame of a video, as fast as the consumer takes them."""

    kind = "video"

    def __init__(self, spec: str) -> None:
        super().__init__()
        import cv2

        self.cap = open_video(spec)
        self.name = spec
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 0.0

    def __iter__(self) -> Iterator[Item]:
        i = 0
        while self.cap is not None:
            ok, frame = self.cap.read()
            if not ok:
                break
            yield Item(frame, i, f"{self.name}#{i}", time.perf_counter())
            i += 1

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class RealtimeVideo(LiveSource):
    """A video played by its own clock, like a camera: frame i is handed over i/fps seconds after the
    first, and frames the consumer is too slow for are dropped (to measure live behaviour)."""

    kind = "video"

    def __init__(self, spec: str, options: SourceOptions) -> None:
        import cv2

        cap = open_video(spec)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 30.0  # a file that does not say: 30
        first = [cap]

        def open_() -> Any:
            return first.pop() if first else open_video(spec)

        super().__init__(spec, open_, fps=options.fps, pace=self.fps, ends=True)


def _open_video(spec: str, options: SourceOptions) -> Source:
    if options.realtime:
        return RealtimeVideo(spec, options)
    if options.fps:
        raise ConfigError(
            "--fps on a video file needs --realtime (play it by its clock and drop what the model "
            "cannot keep up with); without it every frame is processed"
        )
    return VideoFile(spec)


def _is_file_with(spec: str, suffixes: tuple[str, ...]) -> bool:
    if "://" in spec:  # a URL ending in .mp4 or .jpg is a stream, not a local file
        return False
    return Path(spec).suffix.lower() in suffixes and not (_GLOB_CHARS & set(spec))


SOURCES.add(
    SourceKind(
        "image",
        "one image file",
        lambda s: _is_file_with(s, IMAGE_SUFFIXES),
        _open_image,
        options=("max_pixels",),
        missing=needs_opencv,
    ),
)
SOURCES.add(
    SourceKind(
        "video",
        "a video file (mp4, avi, ...), with --realtime to play it by its clock",
        lambda s: _is_file_with(s, VIDEO_SUFFIXES),
        _open_video,
        options=("realtime", "fps"),
        missing=needs_video_decoder,
    ),
)
SOURCES.add(
    SourceKind(
        "images",
        "a folder of images (recursive) or a glob such as 'digits/*.png'",
        lambda s: "://" not in s and (bool(_GLOB_CHARS & set(s)) or Path(s).is_dir()) and not _wavs(s),
        _open_images,
        options=("max_pixels",),
        missing=needs_opencv,
    ),
)


def _wavs(spec: str) -> bool:
    # a folder or glob of wav files is the audio source's, whichever kind registered first
    from edgekit.runtime.sources.audio import is_wav_collection

    return is_wav_collection(spec)
