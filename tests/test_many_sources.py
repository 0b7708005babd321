"""Several sources through one model: they take turns, a slow or dead source never holds up the
others and is reopened on its own, each result says its source, and each source has its summary.
Real sources (video files, live captures read by `LiveSource`'s thread), the real BlazeFace model."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import ConfigError, SourceError
from edgekit.runtime.pipeline import Pipeline, RunOptions
from edgekit.runtime.sources import SourceOptions, open_source
from edgekit.runtime.sources.live import Backoff, LiveSource
from edgekit.runtime.sources.many import Interleaved

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"


def flat_video(path: Path, n: int, level: int, fps: float = 30.0) -> Path:
    """A video of `n` flat frames of one gray `level` (so a frame says which video it is from)."""
    return make_video(path, [np.full((48, 64, 3), level, np.uint8)] * n, fps=fps)


class Capture:
    """A camera's interface (`read`, `release`): flat frames of `level` every `period` seconds;
    after `fail_at` reads it fails as an unplugged device does."""

    def __init__(self, level: int, period: float, fail_at: int | None = None) -> None:
        self.level, self.period, self.fail_at, self.reads = level, period, fail_at, 0

    def read(self):
        time.sleep(self.period)
        self.reads += 1
        if self.fail_at is not None and self.reads > self.fail_at:
            return False, None
        return True, np.full((48, 64, 3), self.level, np.uint8)

    def release(self) -> None:
        pass


def live(name: str, level: int, period: float, fail_at: int | None = None, comes_back: bool = True, **kw):
    """A live source over `Capture`s: the first fails after `fail_at` reads; reopening gives a new
    one (`comes_back`) or fails."""
    opened = []

    def open_capture() -> Capture:
        if opened and not comes_back:
            raise SourceError(f"{name} cannot be opened")
        opened.append(Capture(level, period, fail_at if not opened else None))
        return opened[-1]

    return LiveSource(
        name, open_capture, backoff=Backoff(first=0.05, cap=0.1, give_up=kw.pop("give_up", 5)), **kw
    )


def test_two_videos_take_turns_and_every_frame_of_each_is_processed(tmp_path):
    """Both ready at each turn (the model takes 30 ms here, each file's reader far less): they
    alternate. A source that has nothing ready when its turn comes is passed over, never waited
    for, so without the pause a busy machine's scheduling could give one two turns in a row."""
    a = flat_video(tmp_path / "a.avi", 6, 40)
    b = flat_video(tmp_path / "b.avi", 10, 200)
    feeds = []
    with Pipeline.open(FACE, [str(a), str(b)]) as run:
        for r in run:
            feeds.append((r.item.feed, r.item.index, int(r.item.data.mean())))
            time.sleep(0.03)
    # in turn while both have frames: from the turn before the second source's first frame (the
    # first one opened may take the first turns alone, while the other is still opening)
    order = [f for f, _, _ in feeds]
    both = order.index(1 - order[0]) - 1
    assert order[both : both + 12] == [order[0], 1 - order[0]] * 6, feeds
    assert [i for f, i, _ in feeds if f == 0] == list(range(6))
    assert [i for f, i, _ in feeds if f == 1] == list(range(10))
    assert all(abs(level - (40 if f == 0 else 200)) < 4 for f, _, level in feeds)  # the frame is its source's
    summary = run.summary()
    assert [s.processed for s in summary.feeds] == [6, 10] and summary.processed == 16
    assert [s.source for s in summary.feeds] == [str(a), str(b)]


def test_a_slow_source_does_not_hold_up_a_fast_one():
    """A camera at 1 fps beside one at 100: the fast one is not held to the slow one's pace (in
    step they would have the same count), whatever the model's speed (emulated arm64 included)."""
    slow = live("slow camera", 60, period=1.0)
    fast = live("fast camera", 180, period=0.01)
    counts = [0, 0]
    with Pipeline.open(FACE, [slow, fast]) as run:
        start = time.perf_counter()
        for result in run:
            counts[result.item.feed] += 1
            if counts[1] >= 20:
                break
        elapsed = time.perf_counter() - start
    assert counts[0] <= elapsed + 2  # the slow one at its own rate
    assert counts[1] == 20 and counts[1] > 3 * counts[0]


def test_a_source_that_drops_out_is_reopened_alone_and_a_dead_one_ends_alone():
    """One camera drops out and comes back (a reconnect), one is unplugged for good (it ends with a
    reason, the others go on), one never fails."""
    back = live("camera 1", 60, period=0.01, fail_at=20)
    dead = live("camera 2", 120, period=0.01, fail_at=20, comes_back=False, give_up=0.3)
    steady = live("camera 3", 180, period=0.01)
    counts = [0, 0, 0]
    with Pipeline.open(FACE, [back, dead, steady]) as run:
        start = time.perf_counter()
        for result in run:
            counts[result.item.feed] += 1
            settled = back.reconnects and dead.error and back.read > 40 and counts[2] >= 60
            if settled or time.perf_counter() - start > 30:
                break
        summary = run.summary()
    one, two, three = summary.feeds
    assert one.reconnects == 1 and one.error is None and back.read > 40  # read on after the reconnect
    assert two.reconnects == 0 and "camera 2 was lost" in two.error and counts[1] <= 20
    assert three.reconnects == 0 and counts[2] >= 60  # never held up by the others' trouble
    assert "camera 2 was lost" in summary.error
    for feed in run.source.feeds:  # per source: every frame read was processed or dropped
        assert feed.read == run.feed_stats[feed.index].processed + feed.dropped


def test_read_equals_taken_plus_dropped_per_source_when_the_model_is_slower():
    fast = live("fast", 10, period=0.002)
    other = live("other", 20, period=0.002)
    src = Interleaved([fast, other])
    taken = [0, 0]
    with src:
        for item in src:
            taken[item.feed] += 1
            time.sleep(0.02)  # a model slower than both sources
            if sum(taken) >= 40:
                break
    for feed in src.feeds:
        assert feed.read == taken[feed.index] + feed.dropped and feed.dropped > 0
    assert abs(taken[0] - taken[1]) <= 2  # in turn


def test_several_sources_refuse_what_cannot_take_them(tmp_path):
    a, b = flat_video(tmp_path / "a.avi", 2, 40), flat_video(tmp_path / "b.avi", 2, 90)
    with pytest.raises(ConfigError, match="with several sources give a folder"):
        Pipeline.open(FACE, [str(a), str(b)], RunOptions(save=tmp_path / "out.mp4"))
    with Pipeline.open(FACE, [str(a), str(b)], RunOptions(save=tmp_path / "out")) as run:
        assert len(list(run)) == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a_000000.jpg",
        "a_000001.jpg",
        "b_000000.jpg",
        "b_000001.jpg",
    ]


def test_a_source_that_cannot_open_closes_those_opened_before_it(tmp_path):
    a = open_source(str(flat_video(tmp_path / "a.avi", 2, 40)), SourceOptions(realtime=True))
    with pytest.raises(SourceError, match="does not exist"):
        Pipeline.open(FACE, [a, str(tmp_path / "missing.avi")])
    assert not a.running


def test_json_lines_carry_their_source_and_the_summary_has_one_per_source(tmp_path):
    a = flat_video(tmp_path / "a.avi", 3, 40)
    b = flat_video(tmp_path / "b.avi", 2, 90)
    result = CliRunner().invoke(app, ["run", str(FACE), "--source", str(a), "--source", str(b), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    records, summary = lines[:-1], lines[-1]["summary"]
    assert sorted((r["feed"], r["index"]) for r in records) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert all(r["source"].startswith(str(a if r["feed"] == 0 else b)) for r in records)
    assert [f["processed"] for f in summary["feeds"]] == [3, 2] and summary["processed"] == 5
    assert f"source 0 ({a}): 3 frames in, 3 processed" in result.stderr
    assert "all sources: 5 frames in, 5 processed" in result.stderr
