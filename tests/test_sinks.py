"""Sinks: the --show window (a clear error where there is no GUI or display; a real window under
Xvfb when it is installed), the overlay, and the numbers in the run summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import UnsupportedError
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.run_stats import RunStats, describe_summary
from edgekit.runtime.sinks.window import check_display, opencv_gui, overlay
from edgekit.runtime.sources import Item, Source

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def clip(tmp_path: Path, n: int = 8) -> Path:
    frames = [np.full((96, 128, 3), 20 * i, np.uint8) for i in range(n)]
    return make_video(tmp_path / "clip.avi", frames, fps=20)


def test_show_with_no_display_fails_before_the_run_starts(monkeypatch, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY is how Linux names a display")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    # neither the model nor the source exists: the display is checked before either is opened
    r = invoke("run", tmp_path / "model.tflite", "--source", tmp_path / "clip.avi", "--show")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "--show needs a display and none is set here" in r.stderr and r.stderr.count("\n") == 1


def test_show_with_a_display_that_is_not_there_is_caught_in_a_child(monkeypatch):
    """Qt aborts the process when it cannot reach the display: the probe runs in a child process,
    so the run ends with a sentence instead of a core dump."""
    if not sys.platform.startswith("linux") or opencv_gui() == "NONE":
        pytest.skip("needs an OpenCV with a GUI on Linux")
    free = next(n for n in range(93, 400) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    monkeypatch.setenv("DISPLAY", f":{free}")
    with pytest.raises(UnsupportedError, match=f"--show cannot open a window on display :{free}"):
        check_display()


def test_headless_opencv_is_named_as_such(monkeypatch):
    headless = "  Video I/O:\n  GUI:                           NONE\n  Media I/O:\n"
    assert opencv_gui(headless) == "NONE"
    assert opencv_gui("  GUI:                           QT5\n    QT: YES") == "QT5"
    monkeypatch.setattr("edgekit.runtime.sinks.window.opencv_gui", lambda: "NONE")
    monkeypatch.setenv("DISPLAY", ":0")  # a display is there: only the OpenCV build is missing
    with pytest.raises(UnsupportedError, match="opencv-python-headless.*pip install opencv-python"):
        check_display()


@pytest.mark.skipif(
    shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb)"
)
def test_show_opens_a_real_window_under_xvfb(tmp_path):
    video = clip(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "edgekit.cli", "run", str(FACE), "--source", str(video)]
        + ["--show", "--max-frames", "5"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "5 processed" in proc.stderr and "Traceback" not in proc.stderr


def test_overlay_writes_in_the_top_right_corner_only():
    frame = np.full((120, 200, 3), 128, np.uint8)
    out = overlay(frame.copy(), "29.9 fps  12 ms")
    changed = np.argwhere((out != 128).any(axis=2))
    assert len(changed) > 100
    assert changed[:, 0].max() < 30 and changed[:, 1].min() > 40  # a band at the top right


def test_summary_counts_and_percentiles():
    src = Source()
    src.skip("x.png: not a decodable image")
    stats = RunStats()
    t0 = 1000.0
    for i in range(101):  # latencies 10, 11, ..., 110 ms; one result every 50 ms
        times = {"preprocess": 0.001, "inference": 0.004, "postprocess": 0.002}
        done = t0 + 0.05 * i
        stats.add(Item(None, i, f"#{i}", done - (10 + i) / 1e3), Prediction([], times, done))
    s = stats.summary(src).to_dict()
    assert (s["frames_in"], s["processed"], s["dropped"], s["skipped"], s["reconnects"]) == (
        102,
        101,
        0,
        1,
        0,
    )
    assert s["fps"] == pytest.approx(20.0)
    assert s["latency_ms"]["p50"] == pytest.approx(60.0) and s["latency_ms"]["p99"] == pytest.approx(109.0)
    stages = s["stages_ms_p50"]
    assert stages["inference"] == pytest.approx(4.0) and stages["wait"] == pytest.approx(60.0 - 7.0)
    line = describe_summary(s)
    assert line.startswith("102 frames in, 101 processed, 0 dropped, 1 skipped, 0 reconnects")
    assert "p50 60.0 ms, p99 109.0 ms" in line
