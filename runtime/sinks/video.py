"""`--save out.mp4` / `out.avi`: annotated frames as a video, at the source's frame rate."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Draw, Sink, SinkContext, SinkKind, annotated
from edgekit.runtime.sources import Item

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # the codec OpenCV writes each container with


class VideoFileSink(Sink):
    """Annotated frames as a video; the file appears (by rename) only when it is complete."""

    def __init__(self, path: Path, draw: Draw, fps: float = 10.0, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path, self.draw, self.fps = path, draw, fps if fps and fps > 0 else 10.0
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(path, keep_suffix=True))
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self.done = False

    def write(self, item: Item, prediction: Prediction) -> None:
        import cv2

        frame = annotated(item, prediction, self.draw)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self._writer is None:
            self._size = (frame.shape[1], frame.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise ConfigError(f"OpenCV cannot write {self.path.suffix} video here: try --save out.avi")
        if (frame.shape[1], frame.shape[0]) != self._size:  # a folder of mixed sizes
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

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
        self.done = True

    def saved(self) -> list[str]:
        n = self.frames
        return (
            [f"{self.path} ({n} annotated frame{'s' if n != 1 else ''} at {self.fps:g} fps)"]
            if self.done
            else []
        )

    def abort(self) -> None:
        self._release()
        self._stack.__exit__(ConfigError, ConfigError("aborted"), None)


def _open(context: SinkContext, path: Path | None) -> Sink:
    assert path is not None
    return VideoFileSink(path, context.draw, getattr(context.source, "fps", 0.0) or 10.0, context.force)


SINKS.add(SinkKind("video", "a video", _open, suffixes=tuple(FOURCC)))
