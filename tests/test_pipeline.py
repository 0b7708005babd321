"""The run pipeline as a library object, and the sinks registry: every registered sink writes what it
claims (decoded back), every kind of source feeds the pipeline the same in iterator and callback
mode, and closing releases the source, whichever way the run ends."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_video
from test_live import Device, MjpegServer

from edgekit.errors import ConfigError
from edgekit.runtime.pipeline import Pipeline, RunOptions, RunResult
from edgekit.runtime.predictor import Prediction, Predictor
from edgekit.runtime.sinks import SINKS, SinkContext, save_kind
from edgekit.runtime.sinks.window import opencv_gui
from edgekit.runtime.sources import Item, SourceOptions, open_source
from edgekit.runtime.sources.live import Backoff, LiveSource

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"


def astronaut_frames(n: int) -> list[np.ndarray]:
    """The astronaut photo (BGR) slid sideways frame by frame, so each frame's detection differs."""
    skimage_data = pytest.importorskip("skimage.data")
    bgr = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)[::2, ::2].copy()  # 256x256
    return [np.roll(bgr, 12 * i, axis=1) for i in range(n)]


# -- sinks: one check per registered sink --------------------------------------------------------


def box(frame: np.ndarray, results: list) -> np.ndarray:
    """A task's `draw`: a white square, so a saved frame shows it was annotated."""
    frame[4:20, 4:20] = 255
    return frame


def frames_items(n: int) -> list[Item]:
    return [
        Item(np.full((48, 64, 3), 40 + 20 * i, np.uint8), i, f"clip.avi#{i}", time.perf_counter())
        for i in range(n)
    ]


def write_all(name: str, target: Path | None, source, items: list[Item], stream=None) -> None:
    sink = SINKS.get(name).open(SinkContext(source, box, stream=stream), target)
    with sink:
        for item in items:
            sink.write(item, Prediction([], {"inference": 0.002}, time.perf_counter()))


def annotated(image: np.ndarray) -> bool:
    return bool(image[6:18, 6:18].min() > 200)


def check_text(tmp_path: Path) -> None:
    out = io.StringIO()
    with open_source(str(make_video(tmp_path / "clip.avi", [f.data for f in frames_items(3)]))) as src:
        write_all("text", None, src, frames_items(3), stream=out)
    assert out.getvalue().splitlines() == [f"clip.avi#{i}: nothing" for i in range(3)]


def check_json(tmp_path: Path) -> None:
    out = io.StringIO()
    with open_source(str(make_video(tmp_path / "clip.avi", [f.data for f in frames_items(3)]))) as src:
        write_all("json", None, src, frames_items(3), stream=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2] and records[0]["results"] == []
    assert records[0]["t_result"] >= records[0]["t_capture"] > 1.6e9 and records[0]["times_ms"] == {
        "inference": 2.0
    }


def check_image(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), frames_items(1)[0].data)
    with open_source(str(photo)) as src:
        write_all("image", tmp_path / "out.jpg", src, list(src))
    saved = cv2.imread(str(tmp_path / "out.jpg"))
    assert saved.shape == (48, 64, 3) and annotated(saved)


def check_folder(tmp_path: Path) -> None:
    with open_source(str(make_video(tmp_path / "clip.avi", [f.data for f in frames_items(3)]))) as src:
        write_all("folder", tmp_path / "out", src, frames_items(3))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"clip_{i:06d}.jpg" for i in range(3)]
    assert all(annotated(cv2.imread(str(tmp_path / "out" / n))) for n in names)


def check_video(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.avi", [f.data for f in frames_items(4)], fps=8)
    with open_source(str(video)) as src:
        write_all("video", tmp_path / "out.avi", src, frames_items(4))
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert len(frames) == 4 and fps == pytest.approx(8) and all(annotated(f) for f in frames)


_WINDOW_CHILD = """
import time, cv2, numpy as np
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, SinkContext
from edgekit.runtime.sources import Item, Source
src = Source(); src.name = "clip"
SINKS.get("window").check()
sink = SINKS.get("window").open(SinkContext(src, lambda f, r: f), None)
for i in range(3):
    sink.write(Item(np.full((48, 64, 3), 50 * i, np.uint8), i, f"clip#{i}", time.perf_counter()),
               Prediction([], {}, time.perf_counter()))
visible = cv2.getWindowProperty("edgekit: clip", cv2.WND_PROP_VISIBLE)
sink.close()
print("visible", visible, "stopped", sink.stopped)
"""


def check_window(tmp_path: Path) -> None:
    if shutil.which("xvfb-run") is None or opencv_gui() == "NONE":
        pytest.skip("needs xvfb-run and an OpenCV with a GUI")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-c", _WINDOW_CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["visible", "1.0", "stopped", "False"]


def check_npz(tmp_path: Path) -> None:
    from edgekit.runtime.tasks.tensor import TensorOutput

    sink = SINKS.get("npz").open(SinkContext(None, box), tmp_path / "out.npz")
    with sink:
        for i in range(2):
            out = TensorOutput("y", np.full((1, 3), i, np.float32))
            sink.write(frames_items(2)[i], Prediction([out], {}, time.perf_counter()))
    saved = np.load(tmp_path / "out.npz")
    assert sorted(saved) == ["0/y", "1/y"] and saved["1/y"].tolist() == [[1.0, 1.0, 1.0]]


CHECKS = {
    "npz": check_npz,
    "text": check_text,
    "json": check_json,
    "image": check_image,
    "folder": check_folder,
    "video": check_video,
    "window": check_window,
}


def test_every_registered_sink_has_a_check():
    assert set(CHECKS) == set(SINKS.names())


@pytest.mark.parametrize("name", SINKS.names())
def test_sink_writes_what_it_claims(name, tmp_path):
    CHECKS[name](tmp_path)


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        ("out.jpg", "image"),
        ("OUT.PNG", "image"),
        ("out.mp4", "video"),
        ("out.avi", "video"),
        ("out", "folder"),
    ],
)
def test_save_targets_name_their_sink(target, kind, tmp_path):
    assert save_kind(tmp_path / target).name == kind
    assert SINKS.get(kind).saves


def test_a_folder_with_a_dot_is_a_folder_and_an_unknown_suffix_names_every_choice(tmp_path):
    (tmp_path / "runs.v2").mkdir()
    assert save_kind(tmp_path / "runs.v2").name == "folder"
    with pytest.raises(ConfigError) as e:
        save_kind(tmp_path / "out.txt")
    suffixes = [s for k in SINKS if k.saves for s in k.suffixes]
    assert all(s in str(e.value) for s in suffixes) and str(e.value).endswith("or a folder")


# -- the pipeline over every kind of source -------------------------------------------------------


@pytest.fixture()
def mjpeg():
    servers: list[MjpegServer] = []
    yield lambda **kw: servers.append(MjpegServer(**kw)) or servers[-1]
    for s in servers:
        s.close()


def make_source(kind: str, tmp_path: Path, mjpeg) -> tuple[object, RunOptions]:
    """A source of `kind` (a --source text, or a Source object) and the options to run it with."""
    frames = astronaut_frames(6)
    if kind == "image":
        cv2.imwrite(str(tmp_path / "one.png"), frames[0])
        return str(tmp_path / "one.png"), RunOptions()
    if kind == "images":
        (tmp_path / "in").mkdir(exist_ok=True)
        for i, f in enumerate(frames):
            cv2.imwrite(str(tmp_path / "in" / f"f{i}.png"), f)
        return str(tmp_path / "in"), RunOptions()
    video = str(make_video(tmp_path / "clip.avi", frames, fps=30))
    if kind == "video":
        return video, RunOptions()
    if kind == "video-realtime":
        return video, RunOptions(source=SourceOptions(realtime=True))
    if kind == "stream":
        return mjpeg(fps=30, image=frames[0]).url, RunOptions(max_frames=4)  # a camera on one face
    if kind == "source-object":  # a Source made by the caller: a camera-like capture
        return LiveSource("camera 9", lambda: Device(1), backoff=Backoff(give_up=0)), RunOptions(max_frames=5)
    raise AssertionError(kind)


KINDS = ["image", "images", "video", "video-realtime", "stream", "source-object"]


def released(source) -> bool:
    """Whether a source let go of what it held (its reader thread, its capture)."""
    return not getattr(source, "running", False) and getattr(source, "cap", None) is None


@pytest.mark.parametrize("kind", KINDS)
def test_iterator_and_callback_modes_give_the_same_results_and_release_the_source(kind, tmp_path, mjpeg):
    spec, options = make_source(kind, tmp_path, mjpeg)
    with Pipeline.open(FACE, spec, options) as pipeline:
        iterated = {r.item.index: r.results for r in pipeline}
    assert released(pipeline.source)
    first = pipeline.summary()

    spec, options = make_source(kind, tmp_path, mjpeg)
    called: dict[int, list] = {}
    pipeline = Pipeline.open(FACE, spec, options)
    second = pipeline.run(callback=lambda r: called.__setitem__(r.item.index, r.results))
    assert released(pipeline.source)

    assert iterated and called
    if kind in ("stream", "source-object"):
        # live sources drop frames by timing: which frames each run takes depends on the load and
        # inference times (under qemu, where BlazeFace takes 0.7 s, the two runs took no frame in
        # common; on x86 a cold first load often does the same). Each gives one picture over and
        # over (the face; a flat image), so every result must be the same
        assert len({repr(r) for r in (*iterated.values(), *called.values())}) == 1
        assert (kind == "stream") == bool(next(iter(iterated.values())))  # the face is found
    else:
        same = set(iterated) & set(called)  # a realtime video drops frames too: compare those both saw
        assert same and all(iterated[i] == called[i] for i in same)
    for summary, got in ((first, iterated), (second, called)):
        assert summary.processed == len(got)
        assert summary.frames_in >= summary.processed + summary.dropped - (kind == "stream")
        assert summary.latency_ms["p50"] > 0 and "inference" in summary.stages_ms_p50
    if kind in ("image", "images", "video"):  # every frame, in order, both times
        assert list(iterated) == list(called) == list(range(len(iterated)))
        assert iterated == called and first.frames_in == len(iterated)
    if options.max_frames:
        assert first.processed == second.processed == options.max_frames
    if kind not in ("stream", "source-object"):  # those serve flat frames
        assert any(iterated.values()), "the astronaut's face is found in some frame"


def test_each_result_carries_the_item_its_results_and_stage_times(tmp_path):
    frames = astronaut_frames(3)
    video = make_video(tmp_path / "clip.avi", frames, fps=10)
    results: list[RunResult] = []
    summary = Pipeline.open(FACE, str(video)).run(results.append)
    assert [r.item.index for r in results] == [0, 1, 2] and summary.processed == 3
    (face,) = results[0].results
    assert face.label == "face" and face.score > 0.5
    assert set(results[0].times) == {"preprocess", "inference", "postprocess"}
    assert results[0].latency >= sum(results[0].times.values())
    assert summary.describe().startswith("3 frames in, 3 processed, 0 dropped, 0 skipped, 0 reconnects")


def test_breaking_out_early_and_closing_releases_a_live_source(tmp_path):
    video = make_video(tmp_path / "clip.avi", astronaut_frames(6) * 10, fps=30)
    src = open_source(str(video), SourceOptions(realtime=True))
    with Pipeline.open(FACE, src) as pipeline:
        for result in pipeline:
            if result.item.index >= 2:
                break
        assert src.running  # still reading until the pipeline closes
    assert not src.running
    s = pipeline.summary()
    assert s.frames_in == s.processed + s.dropped  # the live source's invariant, once closed
    with pytest.raises(ConfigError, match="runs once"):
        iter(pipeline)


def test_a_sink_that_cannot_open_closes_the_source_it_was_given(tmp_path):
    video = make_video(tmp_path / "clip.avi", astronaut_frames(6), fps=30)
    (tmp_path / "taken.avi").write_bytes(b"keep me")
    src = open_source(str(video), SourceOptions(realtime=True))
    with pytest.raises(ConfigError, match="already exists"):
        Pipeline.open(FACE, src, RunOptions(save=tmp_path / "taken.avi"))
    assert not src.running and (tmp_path / "taken.avi").read_bytes() == b"keep me"


def test_a_source_the_model_cannot_take_is_refused_before_it_opens():
    with pytest.raises(ConfigError, match="takes image, but 'text://hello' is a text source that gives text"):
        Pipeline.open(FACE, "text://hello")


def test_run_options_are_checked_when_made():
    with pytest.raises(ConfigError, match="lines takes text or json"):
        RunOptions(lines="csv")


def test_a_pipeline_writes_to_the_sinks_its_options_name_and_to_sinks_it_is_given(tmp_path):
    from edgekit.runtime.sinks.json import JsonLinesSink

    video = make_video(tmp_path / "clip.avi", astronaut_frames(3), fps=10)
    out = io.StringIO()
    options = RunOptions(save=tmp_path / "annotated")
    Pipeline(Predictor(FACE), str(video), options, sinks=[JsonLinesSink(out)]).run()
    assert len(out.getvalue().splitlines()) == 3
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == [
        f"clip_{i:06d}.jpg" for i in range(3)
    ]
