"""Sinks: where results go. Every sink takes the same typed results.

Each module of this package registers one kind of sink in `SINKS`: what it writes, which `--save`
targets it takes (by suffix, or by `matches` for what no suffix names, such as a folder), and how
to open it. `save_sink(target, ...)` picks the kind a `--save` target names; `open_sinks` opens
what `edgekit run` writes to. Adding a sink is adding one module here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path
from edgekit.registry import Registry
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sources import Item, Source

Draw = Callable[[np.ndarray, Sequence[Any]], np.ndarray]


class Sink:
    """Base class; a context manager that closes on success and aborts (drops partial files) on error.
    `stopped` becomes true when the user asks a sink to end the run (`q` in the window)."""

    stopped: bool = False

    def write(self, item: Item, prediction: Prediction) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release."""

    def abort(self) -> None:
        """Release after a failure, leaving no half-written output."""
        self.close()

    def saved(self) -> list[str]:
        """What this sink wrote, once closed, for people: `out.mp4 (12 frames)` (nothing: none)."""
        return []

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need to open: the source (its rate and how many items it holds), how the
    task draws results on a frame, whether to overwrite, and the stream for line sinks."""

    source: Source
    draw: Draw
    force: bool = False
    stream: TextIO | None = None  # None: sys.stdout at the time the sink opens


@dataclass(frozen=True)
class SinkKind:
    """One kind of sink. `suffixes` and `matches` say which `--save` targets it takes (a kind with
    neither is asked for by a flag: `--json`, `--show`); `check` runs before the model loads or the
    source opens, so a sink that cannot work here fails first."""

    name: str
    description: str  # in messages: "an image", "a folder"
    open: Callable[[SinkContext, Path | None], Sink]  # (context, the --save target or None)
    suffixes: tuple[str, ...] = ()
    matches: Callable[[Path], bool] | None = None
    check: Callable[[], None] | None = None

    @property
    def saves(self) -> bool:
        """Whether `--save` can name this sink."""
        return bool(self.suffixes) or self.matches is not None


SINKS: Registry[SinkKind] = Registry("sink", package=__name__)


def _save_kinds() -> list[SinkKind]:
    # a suffix names a file format, so a kind that takes the suffix is asked before one that takes
    # what is left (a folder)
    return [k for k in SINKS if k.suffixes] + [k for k in SINKS if k.matches is not None and not k.suffixes]


def _takes(kind: SinkKind, target: Path) -> bool:
    return target.suffix.lower() in kind.suffixes or (kind.matches is not None and kind.matches(target))


def _taking(target: Path) -> SinkKind | None:
    """The kind of sink `--save target` names: the first that takes its suffix, else the first that
    takes what is left (a folder)."""
    return SINKS.first(lambda k: bool(k.suffixes) and _takes(k, target)) or SINKS.first(
        lambda k: not k.suffixes and _takes(k, target)
    )


def save_kind(target: Path) -> SinkKind:
    """The kind of sink `--save target` names."""
    target = Path(target)
    kind = _taking(target)
    if kind is None:
        kinds = _save_kinds()
        parts = [f"{k.description} ({', '.join(k.suffixes)})" if k.suffixes else k.description for k in kinds]
        raise ConfigError(f"--save {target}: give {', '.join(parts[:-1])} or {parts[-1]}")
    return kind


def save_sink(path: Path, source: Source, draw: Draw, force: bool = False) -> Sink:
    """The sink for `--save PATH`: one image, a folder of images, or a video, chosen by the target."""
    path = Path(path)
    return save_kind(path).open(SinkContext(source, draw, force), path)


class Tee(Sink):
    """Several sinks fed the same results, closed together."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)

    @property
    def stopped(self) -> bool:  # type: ignore[override]
        return any(sink.stopped for sink in self.sinks)

    def write(self, item: Item, prediction: Prediction) -> None:
        for sink in self.sinks:
            sink.write(item, prediction)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()

    def saved(self) -> list[str]:
        return [line for sink in self.sinks for line in sink.saved()]


def check_sinks(*, save: Path | None = None, show: bool = False) -> None:
    """Run the checks of the sinks asked for (a window needs a display), before the model loads and
    the camera opens. A `--save` target no sink takes is reported when the sinks open, as before."""
    kinds = [_taking(Path(save))] if save is not None else []
    kinds += [SINKS.get("window")] if show else []
    for kind in kinds:
        if kind is not None and kind.check is not None:
            kind.check()


def open_sinks(
    *,
    json_out: bool,
    save: Path | None,
    source: Source,
    draw: Draw,
    force: bool = False,
    show: bool = False,
    lines: bool = True,
) -> Sink:
    """The sinks `edgekit run` writes to: text or JSON lines on stdout (unless `lines` is false),
    plus `--save` and `--show`. A sink that cannot open aborts those opened before it."""
    context = SinkContext(source, draw, force)
    wanted: list[tuple[SinkKind, Path | None]] = []
    if lines:
        wanted.append((SINKS.get("json" if json_out else "text"), None))
    if save is not None:
        wanted.append((save_kind(save), Path(save)))
    if show:
        wanted.append((SINKS.get("window"), None))
    opened: list[Sink] = []
    try:
        for kind, target in wanted:
            opened.append(kind.open(context, target))
    except BaseException:
        for sink in opened:
            with contextlib.suppress(Exception):
                sink.abort()
        raise
    return Tee(opened)


# -- for the sinks that draw ------------------------------------------------------------------------


def annotated(item: Item, prediction: Prediction, draw: Draw) -> np.ndarray:
    """The item's frame with its results drawn on a copy (the source's frame stays as it was read)."""
    frame = item.data
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
        raise ConfigError(f"--save draws on images, but {item.name} is not one")
    return draw(frame.copy(), prediction.results)


def imwrite(path: Path, image: np.ndarray) -> None:
    """Write an image atomically (the encoder is chosen by the suffix, kept on the temporary file)."""
    import cv2

    with atomic_path(path, keep_suffix=True) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise ConfigError(f"OpenCV could not write {path}")
