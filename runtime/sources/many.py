"""Several sources through one model: each is read on its own thread into a one-slot mailbox, and
the consumer takes the ready ones in turn, so a slow or dead source never holds up the others.

A live source's pump keeps only its newest item (an older one still waiting is dropped, as in
`live.py`); a file's pump waits for its item to be taken, so every frame of a video is processed.
Each source stays responsible for itself: a camera or stream that drops out is reopened by its own
reader thread (`--reconnect`), and the others go on meanwhile. Per source, `read == taken +
dropped` holds at the end, as it does for one live source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from edgekit.errors import first_line
from edgekit.runtime.sources import Item, Source

_JOIN = 5.0  # seconds to wait for a pump thread at close (a file read in progress finishes first)


class Feed:
    """One source among several, as the run's summary and the live page read it: its own counters
    (`read`, `dropped`, `reconnects`, `skipped`, `error`) with the pump's drops added in."""

    def __init__(self, index: int, source: Source, pumped: bool = True) -> None:
        self.index = index
        self.source = source
        self.pumped = pumped  # read through a pump (one of several), or by the consumer itself
        self.name = str(getattr(source, "name", "") or source.kind or f"source {index}")
        self.kind = source.kind
        self.live = source.live
        self.got = 0  # items the pump took from the source
        self.pump_dropped = 0  # replaced in the pump's slot by a newer one before the consumer came
        self.ended = False  # the source has no more items (or failed: `error`)
        self.pump_error: str | None = None

    @property
    def read(self) -> int | None:
        """Items read from the source; None for a file read by the consumer itself (it hands over
        every item it reads: the processed, failed and skipped ones)."""
        if not self.pumped:
            read = getattr(self.source, "read", None)
            return read if isinstance(read, int) else None
        return self.got + int(getattr(self.source, "dropped", 0) or 0)

    @property
    def dropped(self) -> int:
        return self.pump_dropped + int(getattr(self.source, "dropped", 0) or 0)

    @property
    def reconnects(self) -> int:
        return int(getattr(self.source, "reconnects", 0) or 0)

    @property
    def skipped(self) -> int:
        return self.source.skipped

    @property
    def skip_reasons(self) -> list[str]:
        return self.source.skip_reasons

    @property
    def failures(self) -> list[str]:
        return list(getattr(self.source, "failures", []))

    @property
    def error(self) -> str | None:
        return getattr(self.source, "error", None) or self.pump_error

    @property
    def fps(self) -> float:
        return float(getattr(self.source, "fps", 0.0) or 0.0)

    @property
    def down(self) -> str | None:
        """Why this source is not giving frames now (lost, reconnecting, ended), or None."""
        if self.error:
            return self.error
        if int(getattr(self.source, "failed", 0) or 0) > self.reconnects:
            return f"{self.name} dropped out and is being reopened"
        if self.ended:
            return f"{self.name} ended"
        return None


class Interleaved(Source):
    """Items of several sources, taken in turn from those that have one ready; each item's `feed`
    is its source's place in the list. Ends when every source has ended."""

    kind = "several"

    def __init__(self, sources: Sequence[Source]) -> None:
        super().__init__()
        if len(sources) < 2:
            raise ValueError("Interleaved takes two sources or more")
        self.feeds = [Feed(i, s) for i, s in enumerate(sources)]
        self.live = any(s.live for s in sources)
        self.name = " + ".join(f.name for f in self.feeds)
        self._slots: list[Item | None] = [None] * len(sources)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._turn = 0  # the feed asked first next time: the one after the last served
        self._started = False
        self._threads = [
            threading.Thread(target=self._pump, args=(f,), name=f"edgekit-feed {f.name}", daemon=True)
            for f in self.feeds
        ]

    # -- what the summary reads, summed over the sources ----------------------------------------

    @property
    def sources(self) -> list[Source]:
        return [f.source for f in self.feeds]

    @property
    def read(self) -> int:
        return sum(f.read or 0 for f in self.feeds)

    @property
    def dropped(self) -> int:
        return sum(f.dropped for f in self.feeds)

    @property
    def reconnects(self) -> int:
        return sum(f.reconnects for f in self.feeds)

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return sum(f.skipped for f in self.feeds)

    @skipped.setter
    def skipped(self, value: int) -> None:  # Source.__init__ sets it; the feeds keep their own
        pass

    @property
    def skip_reasons(self) -> list[str]:  # type: ignore[override]
        return [r for f in self.feeds for r in f.skip_reasons]

    @skip_reasons.setter
    def skip_reasons(self, value: list[str]) -> None:
        pass

    @property
    def error(self) -> str | None:
        errors = [f.error for f in self.feeds if f.error]
        return "; ".join(errors) if errors else None

    @property
    def fps(self) -> float:
        return max(f.fps for f in self.feeds)

    # -- the pumps -------------------------------------------------------------------------------

    def _pump(self, feed: Feed) -> None:
        i = feed.index
        try:
            for item in feed.source:
                item = dataclasses.replace(item, feed=i)
                with self._cond:
                    if not feed.live:  # a file: every item in turn, so wait until the last is taken
                        while self._slots[i] is not None and not self._stop.is_set():
                            self._cond.wait(0.25)
                    if self._stop.is_set():
                        break
                    if self._slots[i] is not None:
                        feed.pump_dropped += 1
                    self._slots[i] = item
                    feed.got += 1
                    self._cond.notify_all()
        except Exception as e:  # a source that fails mid-way ends alone; the others go on
            feed.pump_error = f"{feed.name} stopped: {first_line(e)}"
        finally:
            with self._cond:
                feed.ended = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Item]:
        if not self._started:
            self._started = True
            for t in self._threads:
                t.start()
        n = len(self.feeds)
        while True:
            with self._cond:
                while True:
                    item = None
                    for k in range(n):
                        j = (self._turn + k) % n
                        if self._slots[j] is not None:
                            item, self._slots[j] = self._slots[j], None
                            self._turn = (j + 1) % n
                            break
                    if item is not None:
                        self._cond.notify_all()  # a file's pump waits for its slot to empty
                        break
                    if self._stop.is_set() or all(f.ended for f in self.feeds):
                        return
                    self._cond.wait(0.25)
            yield item

    def close(self) -> None:
        """Stop the pumps and close every source (each is closed even when another fails to)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        with contextlib.ExitStack() as stack:
            for feed in self.feeds:
                stack.callback(self._close_feed, feed)

    def _close_feed(self, feed: Feed) -> None:
        thread = self._threads[feed.index]
        if feed.live:  # its reader thread stops, then its iterator ends and so does the pump
            feed.source.close()
        if thread.is_alive() and threading.current_thread() is not thread:
            thread.join(_JOIN)
        if not feed.live:  # a file is closed once its pump no longer reads it
            feed.source.close()
        with self._cond:
            if self._slots[feed.index] is not None:  # handed over to no one: dropped
                feed.pump_dropped += 1
                self._slots[feed.index] = None


def feeds_of(source: Any) -> list[Feed]:
    """The feeds of a source: its own for several, or the source itself as feed 0."""
    if isinstance(source, Interleaved):
        return source.feeds
    return [Feed(0, source, pumped=False)]
