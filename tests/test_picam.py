"""The Raspberry Pi camera source (`--source picam`, `picam:N`) through Picamera2.

Picamera2 needs a Pi and libcamera, so the camera *hardware* is replaced by a stand-in module with
Picamera2's API (`global_camera_info`, `create_video_configuration`, `configure`, `start`,
`capture_array`, `stop`, `close`); the source under test, its live reader, resizing, reconnects and
messages are the real ones."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import SourceError
from edgekit.runtime.sources import SourceOptions, open_source, source_kind

pytestmark = pytest.mark.runtime_only


class StandInCamera:
    """A camera with Picamera2's capture API. Frames are what libcamera's "RGB888" gives: 24-bit
    pixels stored B, G, R; frame k is filled with blue k % 256, green 7 and red 200."""

    cameras = [{"Model": "imx708", "Num": 0, "Location": 2}, {"Model": "ov5647", "Num": 1, "Location": 2}]
    opened: list[StandInCamera] = []
    fail_after: list[int | None] = []  # per open, in order: frames before capture_array raises
    sensor_size: tuple[int, int] | None = None  # a sensor mode that ignores the asked size
    unplugged_after: int | None = None  # opens after which the camera is gone (opening fails)

    def __init__(self, camera_num: int = 0) -> None:
        if camera_num >= len(self.cameras):
            raise IndexError("list index out of range")
        if self.unplugged_after is not None and len(self.opened) >= self.unplugged_after:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.num = camera_num
        self.config: dict | None = None
        self.started = self.stopped = self.closed = False
        self.frames = 0
        self.fail = self.fail_after.pop(0) if self.fail_after else None
        StandInCamera.opened.append(self)

    @classmethod
    def global_camera_info(cls) -> list[dict]:
        return list(cls.cameras)

    def create_video_configuration(self, main=None, controls=None, **kw):
        return {"main": dict(main or {}), "controls": dict(controls or {})}

    def configure(self, config: dict) -> None:
        if config["main"].get("format") not in ("RGB888", "BGR888", "XRGB8888", "YUV420"):
            raise RuntimeError("unsupported format")
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert self.started and not self.stopped, "capture on a camera that is not running"
        if self.fail is not None and self.frames >= self.fail:
            raise RuntimeError("Device or resource busy: camera frontend has timed out")
        time.sleep(0.002)
        w, h = self.sensor_size or self.config["main"]["size"]
        frame = np.empty((h, w, 3), np.uint8)
        frame[...] = (self.frames % 256, 7, 200)
        self.frames += 1
        return frame

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def picamera2(monkeypatch):
    """Install the stand-in as the `picamera2` module, fresh for each test."""
    StandInCamera.opened = []
    StandInCamera.fail_after = []
    StandInCamera.sensor_size = None
    StandInCamera.unplugged_after = None
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInCamera
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return StandInCamera


def _take(source, n: int, timeout: float = 10.0) -> list:
    items, deadline = [], time.monotonic() + timeout
    for item in source:
        items.append(item)
        if len(items) == n or time.monotonic() > deadline:
            break
    return items


def test_picam_specs_choose_the_picam_source():
    assert source_kind("picam").name == "picam"
    assert source_kind("picam:1").name == "picam"
    assert source_kind("0").name == "camera"
    with pytest.raises(SourceError):
        source_kind("picam:x")


def test_frames_are_bgr_at_the_asked_size_and_rate(picamera2):
    with open_source("picam:1", SourceOptions(size=(320, 240), fps=15)) as src:
        items = _take(src, 3)
    cam = picamera2.opened[0]
    assert cam.num == 1
    assert cam.config == {"main": {"size": (320, 240), "format": "RGB888"}, "controls": {"FrameRate": 15.0}}
    assert len(items) == 3
    frame = items[0].data
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    # handed over as the camera stores them (B, G, R): no channel swap on the way
    assert tuple(frame[0, 0][1:]) == (7, 200)
    assert items[0].name.startswith("Pi camera 1#")
    assert cam.stopped and cam.closed  # close() released the camera


def test_default_size_is_640x480_and_a_sensor_that_sends_another_is_resized(picamera2):
    with open_source("picam") as src:
        frame = _take(src, 1)[0].data
    assert frame.shape == (480, 640, 3)
    assert picamera2.opened[0].config["controls"] == {}  # no --fps: the camera's own rate
    picamera2.sensor_size = (1536, 864)
    with open_source("picam", SourceOptions(size=(320, 240))) as src:
        frame = _take(src, 1)[0].data
    assert frame.shape == (240, 320, 3)


def test_a_slow_consumer_gets_the_newest_frame_and_the_rest_are_counted_dropped(picamera2):
    src = open_source("picam")
    try:
        first = _take(src, 1)[0]
        time.sleep(0.2)  # a slow model: the reader keeps only the newest frame meanwhile
        second = _take(src, 1)[0]
    finally:
        src.close()
    assert second.index > first.index + 1
    assert src.read == src.taken + src.dropped


def test_a_camera_that_fails_is_reopened_and_frames_go_on(picamera2):
    picamera2.fail_after = [5, None]  # the first open fails after 5 frames, the second never
    with open_source("picam", SourceOptions(reconnect=10)) as src:
        items = _take(src, 12)
    assert len(items) == 12
    assert src.reconnects == 1
    assert "camera frontend has timed out" in src.failures[0]
    first, second = picamera2.opened[:2]
    assert first.stopped and first.closed  # the failed one was released before reopening
    assert second.started


def test_a_camera_that_never_comes_back_ends_with_a_reason(picamera2):
    picamera2.fail_after = [2]
    picamera2.unplugged_after = 1  # the ribbon came loose: every reopen fails
    with open_source("picam", SourceOptions(reconnect=1.0)) as src:
        items = _take(src, 100)  # ends when the reader gives up
    assert len(items) <= 2
    assert src.reconnects == 0
    assert src.error.startswith("Pi camera 0 was lost")
    assert "did not come back within 1 s" in src.error
    assert "Pi camera 0 cannot be opened: Camera __init__ sequence did not complete" in src.error
    assert picamera2.opened[0].closed


def test_missing_picamera2_is_one_sentence_with_both_ways_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as on a machine without it
    with pytest.raises(SourceError) as e:
        open_source("picam")
    assert "python3-picamera2" in str(e.value) and "--source 0" in str(e.value)


def test_a_camera_number_that_is_not_there_lists_the_ones_that_are(picamera2):
    with pytest.raises(SourceError) as e:
        open_source("picam:5")
    assert "no Pi camera 5" in str(e.value) and "0: imx708, 1: ov5647" in str(e.value)
    assert picamera2.opened == []


def test_a_camera_libcamera_refuses_is_one_sentence_and_released(picamera2, monkeypatch):
    def refuse(self):
        raise RuntimeError("Failed to start camera: Device or resource busy")

    monkeypatch.setattr(picamera2, "start", refuse)
    with pytest.raises(SourceError) as e:
        open_source("picam")
    assert str(e.value).startswith("Pi camera 0 cannot be opened: Failed to start camera")
    assert picamera2.opened[0].closed


def test_cli_run_on_picam_without_picamera2_exits_1_with_the_sentence(monkeypatch):
    from edgekit.runtime.sources import picam

    monkeypatch.setitem(sys.modules, "picamera2", None)
    from importlib.resources import files

    model = files("edgekit.runtime.assets") / "face_detection_short_range.tflite"
    result = CliRunner().invoke(app, ["run", str(model), "--source", "picam", "--json"])
    assert result.exit_code == 1
    assert picam.MISSING in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_doctor_lists_pi_cameras_beside_v4l2_ones(picamera2):
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("Pi cameras"))
    assert "0: imx708" in line and "1: ov5647" in line
    assert any(ln.startswith("cameras ") for ln in result.output.splitlines())


def test_the_reader_thread_is_gone_after_close(picamera2):
    src = open_source("picam")
    _take(src, 2)
    src.close()
    assert not src.running
    assert not any(t.name.startswith("edgekit-live Pi camera") for t in threading.enumerate())
