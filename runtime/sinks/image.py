"""`--save out.jpg`: the annotated frame of a single input image, in one image file; or, for a
source whose items are each drawn as a picture of their own (a generator's requests: `digits:`),
every picture of the run tiled into one grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


class GridSink(Sink):
    """Each item's picture (what the task draws on a blank tile) in one grid, `COLUMNS` a row,
    written once at the end: a run that fails leaves no half-made grid."""

    COLUMNS = 10
    TILE = 56  # pixels a side: a 28x28 digit at twice its size

    def __init__(self, path: Path, draw: Draw, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path, self.draw, self.tiles = path, draw, []

    def write(self, item: Item, prediction: Prediction) -> None:
        tile = np.zeros((self.TILE, self.TILE, 3), np.uint8)
        self.tiles.append(self.draw(tile, prediction.results))

    def close(self) -> None:
        if not self.tiles:
            return
        rows = -(-len(self.tiles) // self.COLUMNS)
        columns = min(len(self.tiles), self.COLUMNS)
        grid = np.zeros((rows * self.TILE, columns * self.TILE, 3), np.uint8)
        for i, tile in enumerate(self.tiles):
            r, c = divmod(i, self.COLUMNS)
            grid[r * self.TILE : (r + 1) * self.TILE, c * self.TILE : (c + 1) * self.TILE] = tile
        imwrite(self.path, grid)

    def abort(self) -> None:
        self.tiles = []


def _open(context: SinkContext, path: Path | None) -> Sink:
    assert path is not None
    source = context.source
    if getattr(source, "tiles", False):  # each item is a picture of its own (digits:)
        return GridSink(path, context.draw, context.force)
    paths = getattr(source, "paths", None)
    if paths is None or len(paths) != 1:  # refused before the first frame, not at the second
        many = f"{len(paths)} images" if paths else f"the frames of a {source.kind}"
        videos = SINKS.get("video").suffixes
        raise ConfigError(
            f"--save {path} holds one image, not {many}: save to a folder or a video ({', '.join(videos)})"
        )
    return ImageFileSink(path, context.draw, context.force)


SINKS.add(SinkKind("image", "an image", _open, suffixes=IMAGE_SUFFIXES))
