"""Sources: iterators of timestamped items (frames, utterances, lines) with `close()`.

`open_source(spec)` picks the kind from the `--source` text: the first registered kind whose
`matches` accepts it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from edgekit.errors import ConfigError, SourceError
from edgekit.registry import Registry


@dataclass(frozen=True)
class Item:
    data: Any
    index: int
    name: str  # file name, or "camera 0 #12"
    t_capture: float  # time.perf_counter() when it was read
    feed: int = 0  # which of several sources it came from (their order in --source), 0 for one


KEPT_REASONS = 10  # reasons kept for the report: a source that runs for days must not grow


class Source:
    """Base class. `skipped` counts items that could not be read (corrupt files, bad frames);
    `skip_reasons` keeps the first `KEPT_REASONS` of them."""

    kind: str = ""
    live: bool = False

    def __init__(self) -> None:
        self.skipped = 0
        self.skip_reasons: list[str] = []

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.skip_reasons) < KEPT_REASONS:
            self.skip_reasons.append(reason)

    def __iter__(self) -> Iterator[Item]:
        raise NotImplementedError

    def close(self) -> None:
        """Release files, cameras, threads."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source; a kind honours the fields it names in `SourceKind.options`."""

    fps: float | None = None  # hand over at most this many items per second (live sources)
    size: tuple[int, int] | None = None  # (width, height) to capture at (camera, stream)
    realtime: bool = False  # play a video file by its own clock, as a live source
    reconnect: float = 30.0  # seconds to keep reopening a lost camera or stream (0: give up at once)
    timeout: float = 5.0  # seconds to wait for a stream to open or send a frame
    max_pixels: int | None = None  # refuse images larger than this by their header (None: 100 MP)

    def given(self) -> list[str]:
        """The names of the options set away from their defaults."""
        default = SourceOptions()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]


def usable() -> str:
    """The check of a source that needs nothing beyond the runtime itself: it works everywhere."""
    return ""


def needs_opencv() -> str:
    """Images need OpenCV to decode them: "" where it is installed, else how to get it."""
    from edgekit.deps import installed

    return "" if installed("cv2") else "pip install opencv-python-headless"


def needs_video_decoder() -> str:
    """Video files and streams need OpenCV built with FFmpeg or GStreamer (the pip wheels have FFmpeg)."""
    missing = needs_opencv()
    if missing:
        return missing
    import cv2

    decoders = ("FFMPEG:", "GStreamer:")
    if any(
        line.strip().startswith(decoders) and "YES" in line for line in cv2.getBuildInformation().splitlines()
    ):
        return ""
    return "this OpenCV has no FFmpeg or GStreamer to decode video"


@dataclass(frozen=True)
class SourceKind:
    name: str
    description: str
    matches: Callable[[str], bool]
    open: Callable[..., Source]  # open(spec), or open(spec, SourceOptions) when `options` is not empty
    produces: str = "image"
    options: tuple[str, ...] = ()  # the SourceOptions fields this kind honours
    # whether it can be read on this machine, checked without opening a device: "" when it can,
    # else why not and what to install (what `edgekit list` and `doctor` say)
    missing: Callable[[], str] = usable

    def works_here(self) -> tuple[bool, str]:
        why = self.missing()
        return not why, why


SOURCES: Registry[SourceKind] = Registry("source", package=__name__)


def source_kind(spec: str) -> SourceKind:
    """The kind of source `spec` names (the first registered that takes it)."""
    kind = SOURCES.first(lambda k: k.matches(spec))
    if kind is not None:
        return kind
    from pathlib import Path

    path = Path(spec)
    why = "no such file or folder" if not path.exists() else f"no source reads {path.suffix or 'such'} files"
    kinds = "; ".join(kind.description for kind in SOURCES)
    raise SourceError(f"cannot use {spec!r} as a source ({why}): give {kinds}")


def open_source(spec: str, options: SourceOptions | None = None, kind: SourceKind | None = None) -> Source:
    """Open the source `spec` names; options it does not honour are refused, naming who does.
    `kind`: the spec's kind when the caller has looked it up already (it is found once)."""
    kind = kind or source_kind(spec)
    options = options or SourceOptions()
    for name in options.given():
        if name not in kind.options:
            takers = [k.name for k in SOURCES if name in k.options]
            raise ConfigError(
                f"--{name} does not apply to {spec!r} ({kind.name}); it applies to {', '.join(takers)} sources"
            )
    return kind.open(spec, options) if kind.options else kind.open(spec)
