"""`--save out/`: one annotated image per input, named as the input, in a folder (created)."""

from __future__ import annotations

import re
from pathlib import Path

from edgekit.errors import ConfigError
from edgekit.fileio import check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Draw, Sink, SinkContext, SinkKind, annotated, imwrite
from edgekit.runtime.sinks.image import IMAGE_SUFFIXES
from edgekit.runtime.sources import Item


class ImageFolderSink(Sink):
    """One annotated image per input, named as the input, in a folder (created)."""

    def __init__(self, folder: Path, draw: Draw, force: bool = False) -> None:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--save {folder} is a file, not a folder")
        check_writable(folder / "x", force=True)
        self.folder, self.draw, self.force = folder, draw, force
        self.written = 0

    def target(self, item: Item) -> Path:
        name = Path(item.name).name
        if Path(name).suffix.lower() not in IMAGE_SUFFIXES:  # a video frame or a camera frame
            stem = re.sub(r"[^\w.-]+", "_", Path(item.name.split("#")[0]).stem) or "frame"
            name = f"{stem}_{item.index:06d}.jpg"
        return self.folder / name

    def write(self, item: Item, prediction: Prediction) -> None:
        path = self.target(item)
        check_writable(path, force=self.force)
        imwrite(path, annotated(item, prediction, self.draw))
        self.written += 1

    def saved(self) -> list[str]:
        n = self.written
        return [f"{self.folder}/ ({n} annotated image{'s' if n != 1 else ''})"] if n else []


def _open(context: SinkContext, folder: Path | None) -> Sink:
    assert folder is not None
    return ImageFolderSink(folder, context.draw, context.force)


def _is_folder(target: Path) -> bool:
    """A name without a suffix, or a folder that exists (`out.v2/`)."""
    return not target.suffix or target.is_dir()


SINKS.add(SinkKind("folder", "a folder", _open, matches=_is_folder))
