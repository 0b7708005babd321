"""`--save out.jpg`: the annotated frame of a single input image, in one image file."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import ConfigError
from edgekit.fileio import check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Draw, Sink, SinkContext, SinkKind, annotated, imwrite
from edgekit.runtime.sources import Item

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class ImageFileSink(Sink):
    """The annotated frame of a single input image, written to one .jpg/.png file."""

    def __init__(self, path: Path, draw: Draw, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path, self.draw, self.written = path, draw, False

    def write(self, item: Item, prediction: Prediction) -> None:
        if self.written:
            raise ConfigError(f"--save {self.path} holds one image: give a folder to save many")
        imwrite(self.path, annotated(item, prediction, self.draw))
        self.written = True

    def saved(self) -> list[str]:
        return [f"{self.path} (the annotated image)"] if self.written else []


def _open(context: SinkContext, path: Path | None) -> Sink:
    assert path is not None
    source = context.source
    paths = getattr(source, "paths", None)
    if paths is None or len(paths) != 1:  # refused before the first frame, not at the second
        many = f"{len(paths)} images" if paths else f"the frames of a {source.kind}"
        videos = SINKS.get("video").suffixes
        raise ConfigError(
            f"--save {path} holds one image, not {many}: save to a folder or a video ({', '.join(videos)})"
        )
    return ImageFileSink(path, context.draw, context.force)


SINKS.add(SinkKind("image", "an image", _open, suffixes=IMAGE_SUFFIXES))
