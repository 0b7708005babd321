"""Live sources: a reader thread keeps only the newest item, so a slow consumer drops frames
instead of falling behind, and a capture that fails mid-stream is reopened with back-off.

The thread owns the capture (reads, reopens and releases it), so no OpenCV call on a capture ever
runs on two threads at once. The consumer takes items from a one-slot mailbox: an item that is
replaced before it is taken is counted in `dropped`, and `read == taken + dropped` at the end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edgekit.errors import SourceError, first_line
from edgekit.runtime.sources import KEPT_REASONS, Item, Source

# FFmpeg reads this once, when OpenCV first opens a capture: keep its log lines (a refused
# connection, a broken packet) off the terminal, since every failure is reported as a sentence
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; a user's own setting wins


_MAX_EMPTY = 30  # empty frames in a row that count as a failed capture


class Capture(Protocol):
    """What a live source reads from: `cv2.VideoCapture` has this shape."""

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Reopen delays: `first`, doubling up to `cap`, until `give_up` seconds have passed."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 8.0
    give_up: float = 30.0

    def delays(self) -> Iterator[float]:
        """The wait before each reopen attempt (endless: the caller stops at `give_up`)."""
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.factor, self.cap)


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SourceError(f"--size takes WIDTHxHEIGHT such as 640x480, not {text!r}") from None
    if w < 1 or h < 1:
        raise SourceError(f"--size {text}: width and height must be positive")
    return w, h


class LiveSource(Source):
    """Items from a capture read on its own thread; only the newest unconsumed one is kept.

    `open_capture` opens the capture (raising SourceError when it cannot); it is called once here,
    so a source that cannot open fails before the run starts, and again to reconnect. `pace` (items
    per second) makes the thread hand items over by the clock (a video file played in real time),
    `ends` says a failed read is the end of the input rather than a failure, `fps` limits how often
    the consumer is handed an item, and `size` (width, height) resizes frames that arrive at another.
    """

    live = True

    def __init__(
        self,
        name: str,
        open_capture: Callable[[], Capture],
        *,
        fps: float | None = None,
        size: tuple[int, int] | None = None,
        pace: float | None = None,
        ends: bool = False,
        backoff: Backoff | None = None,
        join_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if fps is not None and fps <= 0:
            raise SourceError(f"--fps must be positive, not {fps:g}")
        self.name = name
        self.read = 0  # frames read from the capture (frames in)
        self.dropped = 0  # frames replaced by a newer one before the consumer took them
        self.taken = 0  # frames handed to the consumer
        self.reconnects = 0  # successful reopens after a failure
        self.failed = 0  # times the capture failed
        self.failures: list[str] = []  # why, for the first KEPT_REASONS failures
        self.error: str | None = None  # set when the capture was lost for good
        self._open = open_capture
        self._interval = 1.0 / fps if fps else 0.0
        self._size = size
        self._pace = pace
        self._ends = ends
        self._backoff = backoff or Backoff()
        self._join_timeout = join_timeout
        self._cond = threading.Condition()
        self._slot: Item | None = None
        self._finished = False
        self._stop = threading.Event()
        cap = open_capture()  # here, so that a source that cannot open fails before the run starts
        self._thread = threading.Thread(
            target=self._run, args=(cap,), name=f"edgekit-live {name}", daemon=True
        )
        self._thread.start()

    # -- the reader thread -------------------------------------------------------------------

    def _run(self, cap: Capture | None) -> None:
        t0, empty = time.perf_counter(), 0
        try:
            while cap is not None and not self._stop.is_set():
                try:
                    ok, frame = cap.read()
                    why = "a frame could not be read"
                except Exception as e:  # a capture object may raise instead of returning False
                    ok, frame, why = False, None, first_line(e)
                if ok and (frame is None or getattr(frame, "size", 1) == 0):
                    self.skip(f"{self.name}: an empty frame after frame {self.read}")
                    empty += 1
                    if empty < _MAX_EMPTY:
                        continue
                    ok, why = False, f"{_MAX_EMPTY} empty frames in a row"
                empty = 0
                if not ok:
                    if self._ends:
                        break
                    self._release(cap)
                    cap = self._reconnect(why)
                    t0 = time.perf_counter() - self.read / self._pace if self._pace else t0
                    continue
                frame = self._resized(frame)
                if self._pace:  # by the clock: frame i is due i/pace seconds after the first
                    due = t0 + self.read / self._pace
                    if self._stop.wait(max(0.0, due - time.perf_counter())):
                        break
                self._publish(Item(frame, self.read, f"{self.name}#{self.read}", time.perf_counter()))
        except Exception as e:  # a bug or a frame OpenCV cannot resize: end the source, say why
            self.error = f"{self.name} stopped: {first_line(e)}"
        finally:
            self._release(cap)
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _resized(self, frame: Any) -> Any:
        if self._size is None or not isinstance(frame, np.ndarray) or frame.ndim < 2:
            return frame
        if (frame.shape[1], frame.shape[0]) == self._size:
            return frame
        import cv2

        return cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)

    def _publish(self, item: Item) -> None:
        with self._cond:
            if self._slot is not None:
                self.dropped += 1
            self._slot = item
            self.read += 1
            self._cond.notify()

    def _reconnect(self, why: str) -> Capture | None:
        """Reopen with back-off; None when stopped or when `give_up` seconds passed in vain."""
        self.failed += 1
        if len(self.failures) < KEPT_REASONS:
            self.failures.append(why)
        start, last = time.perf_counter(), why
        if self._backoff.give_up > 0:
            for delay in self._backoff.delays():
                left = self._backoff.give_up - (time.perf_counter() - start)
                if left <= 0:
                    break
                if self._stop.wait(min(delay, left)):
                    return None
                try:
                    cap = self._open()
                except SourceError as e:
                    last = str(e)
                    continue
                self.reconnects += 1
                return cap
        self.error = (
            f"{self.name} was lost ({why}) and did not come back within "
            f"{self._backoff.give_up:g} s (last: {last})"
        )
        return None

    @staticmethod
    def _release(cap: Capture | None) -> None:
        if cap is not None:
            # a capture that failed may fail to release too; it is gone either way
            with contextlib.suppress(Exception):
                cap.release()

    # -- the consumer ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Item]:
        due = 0.0
        while True:
            if self._interval:  # --fps: wait for the next slot, then take the newest item
                delay = due - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
            with self._cond:
                while self._slot is None and not self._finished:
                    self._cond.wait(0.25)
                item, self._slot = self._slot, None
                if item is None:
                    return
                self.taken += 1
            due = time.perf_counter() + self._interval
            yield item

    def close(self) -> None:
        """Stop the reader thread, wait for it, and release the capture."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            # a read blocked in the driver returns within its own timeout; the thread then releases
            self._thread.join(self._join_timeout)
        with self._cond:
            if self._slot is not None:  # handed over to no one: dropped
                self.dropped += 1
                self._slot = None

    @property
    def running(self) -> bool:
        """Whether the reader thread is still reading."""
        return self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary."""
        return {
            "read": self.read,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "failed": self.failed,
            "failures": list(self.failures),
            "error": self.error,
        }
