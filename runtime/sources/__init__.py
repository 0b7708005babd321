"""Sources: iterators of timestamped items (frames, utterances, lines) with `close()`.

`open_source(spec)` picks the kind from the `--source` text: the first registered kind whose
`matches` accepts it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edgekit.errors import SourceError
from edgekit.registry import Registry


@dataclass(frozen=True)
class Item:
    data: Any
    index: int
    name: str  # file name, or "camera 0 #12"
    t_capture: float  # time.perf_counter() when it was read


class Source:
    """Base class. `skipped` counts items that could not be read (corrupt files, bad frames)."""

    kind: str = ""
    live: bool = False

    def __init__(self) -> None:
        self.skipped = 0
        self.skip_reasons: list[str] = []

    def skip(self, reason: str) -> None:
        self.skipped += 1
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
class SourceKind:
    name: str
    description: str
    matches: Callable[[str], bool]
    open: Callable[[str], Source]
    produces: str = "image"


SOURCES: Registry[SourceKind] = Registry("source")


def _load_all() -> None:
    from edgekit.runtime.sources import camera, files  # noqa: F401


def source_kind(spec: str) -> SourceKind:
    _load_all()
    for _, kind in SOURCES.items():
        if kind.matches(spec):
            return kind
    raise SourceError(
        f"cannot use {spec!r} as a source: give an image, a folder or glob of images, a video file, "
        "or a camera index such as 0"
    )


def open_source(spec: str) -> Source:
    return source_kind(spec).open(spec)
