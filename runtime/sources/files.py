"""File sources: one image, a folder or glob of images, a video file."""

from __future__ import annotations

import glob
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
_GLOB_CHARS = set("*?[")


def decode_image(path: Path) -> np.ndarray | None:
    """Decode an image file (None if it cannot be decoded). Reads bytes first: works for any path."""
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


class ImageFiles(Source):
    kind = "images"

    def __init__(self, paths: list[Path], origin: str) -> None:
        super().__init__()
        if not paths:
            raise SourceError(f"no images in {origin} (looked for {', '.join(IMAGE_SUFFIXES)})")
        self.paths = paths

    def __iter__(self) -> Iterator[Item]:
        for i, path in enumerate(self.paths):
            image = decode_image(path)
            if image is None:
                self.skip(f"{path}: not a decodable image")
                continue
            yield Item(image, i, str(path), time.perf_counter())


def _open_image(spec: str) -> Source:
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"image {path} does not exist")
    if decode_image(path) is None:
        raise SourceError(f"{path} is not an image OpenCV can decode")
    return ImageFiles([path], spec)


def _open_images(spec: str) -> Source:
    if _GLOB_CHARS & set(spec):
        paths = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise SourceError(f"folder {folder} does not exist")
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
    return ImageFiles([p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES], spec)


class VideoFile(Source):
    kind = "video"

    def __init__(self, spec: str) -> None:
        super().__init__()
        import cv2

        if not Path(spec).exists():
            raise SourceError(f"video {spec} does not exist")
        self.cap = cv2.VideoCapture(spec)
        if not self.cap.isOpened():
            raise SourceError(f"{spec} is not a video OpenCV can open")
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


def _is_file_with(spec: str, suffixes: tuple[str, ...]) -> bool:
    return Path(spec).suffix.lower() in suffixes and not (_GLOB_CHARS & set(spec))


SOURCES.add(
    "image",
    SourceKind("image", "one image file", lambda s: _is_file_with(s, IMAGE_SUFFIXES), _open_image),
)
SOURCES.add(
    "video",
    SourceKind(
        "video", "a video file (mp4, avi, ...)", lambda s: _is_file_with(s, VIDEO_SUFFIXES), VideoFile
    ),
)
SOURCES.add(
    "images",
    SourceKind(
        "images",
        "a folder of images (recursive) or a glob such as 'digits/*.png'",
        lambda s: bool(_GLOB_CHARS & set(s)) or Path(s).is_dir(),
        _open_images,
    ),
)
