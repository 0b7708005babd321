"""Sinks: where results go. Every sink takes the same typed results."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sources import Item, Source


class Sink:
    """Base class; a context manager that closes on success and aborts (drops partial files) on error."""

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


class JsonLinesSink(Sink):
    """One JSON object per input, for scripts."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, item: Item, prediction: Prediction) -> None:
        record = {
            "source": item.name,
            "index": item.index,
            "results": [r.to_dict() for r in prediction.results],
            "times_ms": {k: round(v * 1e3, 4) for k, v in prediction.times.items()},
        }
        print(json.dumps(record, ensure_ascii=False), file=self.stream, flush=True)


Draw = Callable[[np.ndarray, Sequence[Any]], np.ndarray]


class Tee(Sink):
    """Several sinks fed the same results, closed together."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

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


def open_sinks(*, json_out: bool, save: Path | None, source: Source, draw: Draw, force: bool = False) -> Sink:
    """The sinks `edgekit run` writes to: text or JSON lines on stdout, plus `--save` if given."""
    sinks: list[Sink] = [JsonLinesSink() if json_out else TextSink()]
    if save is not None:
        sinks.append(save_sink(save, source, draw, force))
    return Tee(sinks)
