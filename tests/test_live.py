"""Live sources: newest-frame hand-over with a slow consumer, reconnect with back-off, network
streams through real OpenCV (an MJPEG-over-HTTP server run by the test), and the run summary."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_video
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import ConfigError, SourceError
from edgekit.runtime.sources import SourceOptions, open_source
from edgekit.runtime.sources.live import Backoff, LiveSource, parse_size

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def gray_video(path: Path, n: int, fps: float, size: tuple[int, int] = (64, 48)) -> Path:
    """A video whose frame i is a flat gray of level 4*i (so a frame's content says its index)."""
    w, h = size
    return make_video(path, [np.full((h, w, 3), (4 * i) % 256, np.uint8) for i in range(n)], fps=fps)


class MjpegServer:
    """An MJPEG-over-HTTP camera on a local port, as IP cameras serve it (multipart/x-mixed-replace).
    With `drop_after`, the first connection hangs up after that many frames: a stream that fails
    mid-way and is back when the client reconnects. Frames are flat and a shade lighter each time,
    or `image` every time."""

    def __init__(
        self, fps: float = 50.0, drop_after: int | None = None, size=(64, 48), image: np.ndarray | None = None
    ) -> None:
        self.connections, self.stopped = 0, False
        fixed = None if image is None else cv2.imencode(".jpg", image)[1].tobytes()  # encoded once
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.connections += 1
                first = server.connections == 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not server.stopped:
                        jpg = fixed
                        if jpg is None:
                            flat = np.full((size[1], size[0], 3), (8 * i) % 256, np.uint8)
                            jpg = cv2.imencode(".jpg", flat)[1].tobytes()
                        head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                        self.wfile.write(head + jpg + b"\r\n")
                        i += 1
                        if first and drop_after and i >= drop_after:
                            return  # hang up
                        time.sleep(1 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"

    def close(self) -> None:
        self.stopped = True
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def mjpeg():
    servers: list[MjpegServer] = []

    def make(**kw: object) -> MjpegServer:
        servers.append(MjpegServer(**kw))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the newest frame, and nothing older -----------------------------------------------------------


def test_slow_consumer_gets_the_newest_frame_and_the_rest_are_dropped(tmp_path):
    """A 60 fps video played in real time to a model that takes 0.1 s: about one frame in six is
    processed, the others are dropped (counted), and latency stays near one period instead of
    growing as a queue's would (the last of 60 queued frames would wait about 5 s)."""
    video = gray_video(tmp_path / "clip.avi", n=60, fps=60)
    period = 0.1
    taken: list[tuple[int, float, float]] = []  # index, age when taken, capture-to-result latency
    with open_source(str(video), SourceOptions(realtime=True)) as src:
        assert src.live and src.fps == pytest.approx(60)
        for item in src:
            age = time.perf_counter() - item.t_capture
            assert abs(float(item.data.mean()) - (4 * item.index) % 256) < 3  # the frame is the one named
            time.sleep(period)  # the slow model
            taken.append((item.index, age, time.perf_counter() - item.t_capture))
    assert not src.running
    indices = [t[0] for t in taken]
    assert src.read == 60 and src.read == src.taken + src.dropped
    assert src.dropped >= 30 and len(taken) == src.taken
    assert indices == sorted(set(indices)) and max(np.diff(indices)) > 1
    assert indices[-1] >= 50  # the end of the video was seen, not a backlog from its start
    ages = np.array([t[1] for t in taken])
    latencies = np.array([t[2] for t in taken])
    assert np.median(ages) < period / 2  # taken when new: the slot holds the newest frame only
    assert latencies.max() < 4 * period


def test_fps_limits_how_often_items_are_handed_over(tmp_path):
    video = gray_video(tmp_path / "clip.avi", n=60, fps=60)  # one second
    with open_source(str(video), SourceOptions(realtime=True, fps=5)) as src:
        got = [item.index for item in src]
    assert 2 <= len(got) <= 5 + 2  # one second at 5 per second (an upper bound: load only lowers it)
    assert src.read == 60 and src.dropped == 60 - len(got)


def test_fps_on_a_plain_video_or_a_folder_is_refused_with_the_fix(tmp_path):
    video = gray_video(tmp_path / "clip.avi", n=3, fps=10)
    with pytest.raises(ConfigError, match="needs --realtime"):
        open_source(str(video), SourceOptions(fps=5))
    with pytest.raises(ConfigError, match="--size does not apply to .* it applies to camera, .*stream"):
        open_source(str(tmp_path), SourceOptions(size=(64, 48)))
    assert parse_size("640x480") == (640, 480)
    with pytest.raises(SourceError, match="WIDTHxHEIGHT"):
        parse_size("640")


# -- a source that fails mid-stream and comes back --------------------------------------------------


class Device:
    """A capture with a camera's interface: frames whose value is the session number; after
    `fail_at` reads it fails as a driver does, by raising or by returning no frame."""

    def __init__(self, session: int, fail_at: int | None = None, how: str = "raise") -> None:
        self.session, self.fail_at, self.how = session, fail_at, how
        self.reads, self.released = 0, False

    def read(self):
        time.sleep(0.002)  # a device's frame interval
        self.reads += 1
        if self.fail_at is not None and self.reads > self.fail_at:
            if self.how == "raise":
                raise RuntimeError("device unplugged")
            return False, None
        return True, np.full((4, 4, 3), self.session, np.uint8)

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize("how", ["raise", "false"])
def test_a_capture_that_fails_mid_stream_is_reopened_and_the_run_goes_on(how):
    devices: list[Device] = []
    attempts = []

    def open_capture() -> Device:
        attempts.append(time.perf_counter())
        if len(attempts) == 1:
            devices.append(Device(1, fail_at=5, how=how))
        elif len(attempts) <= 4:  # unplugged for three attempts
            raise SourceError("camera 9 cannot be opened")
        else:
            devices.append(Device(2))
        return devices[-1]

    src = LiveSource("camera 9", open_capture, backoff=Backoff(first=0.01, cap=0.04, give_up=10))
    sessions = []
    with src:
        for item in src:
            sessions.append(int(item.data[0, 0, 0]))
            if sessions.count(2) >= 5:
                break
    assert not src.running
    assert 1 in sessions and sessions[-5:] == [2] * 5
    assert src.reconnects == 1 and len(attempts) == 5
    assert src.failures == ["device unplugged" if how == "raise" else "a frame could not be read"]
    assert src.error is None and all(d.released for d in devices)


def test_a_capture_that_never_comes_back_ends_the_source_with_a_reason():
    calls = []

    def open_capture() -> Device:
        calls.append(1)
        if len(calls) > 1:
            raise SourceError("camera 9 cannot be opened")
        return Device(1, fail_at=3)

    with LiveSource("camera 9", open_capture, backoff=Backoff(first=0.01, cap=0.02, give_up=0.3)) as src:
        got = list(src)  # ends by itself
    assert len(got) >= 1 and src.reconnects == 0 and len(calls) > 2
    assert "camera 9 was lost (device unplugged) and did not come back within 0.3 s" in src.error
    assert "camera 9 cannot be opened" in src.error


def test_backoff_doubles_up_to_its_cap():
    delays = Backoff(first=0.5, factor=2, cap=8).delays()
    assert [next(delays) for _ in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]


# -- network streams ----------------------------------------------------------------------------------


def test_mjpeg_over_http_stream_is_read_live(mjpeg):
    server = mjpeg(fps=50)
    with open_source(server.url, SourceOptions(size=(32, 24))) as src:
        assert src.kind == "stream" and src.live
        frames = []
        for item in src:
            frames.append(item.data)
            if len(frames) == 10:
                break
    assert not src.running
    assert all(f.shape == (24, 32, 3) for f in frames)  # --size: resized to what was asked
    assert len({int(f.mean()) for f in frames}) > 3  # a moving stream, not one frame repeated
    assert src.read >= 10 and server.connections == 1


def test_unreachable_stream_urls_end_with_one_sentence_not_a_hang():
    with pytest.raises(SourceError, match=r"cannot open stream rtsp://127.0.0.1:9/x: .*check the URL"):
        open_source("rtsp://127.0.0.1:9/x", SourceOptions(timeout=2))
    port = closed_port()
    with pytest.raises(SourceError, match=rf"cannot open stream http://127.0.0.1:{port}/cam"):
        open_source(f"http://127.0.0.1:{port}/cam", SourceOptions(timeout=2))


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:  # accepts connections and says nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://admin:secret@127.0.0.1:{silent.getsockname()[1]}/video"
        with pytest.raises(SourceError, match="did not answer within 1 s") as e:
            open_source(url, SourceOptions(timeout=1))
    assert "secret" not in str(e.value) and "admin:***@" in str(e.value)


def test_urls_are_streams_even_when_they_end_like_files():
    from edgekit.runtime.sources import source_kind

    assert source_kind("http://example.com/clip.mp4").name == "stream"
    assert source_kind("rtsp://cam.local/photo.jpg").name == "stream"


# -- through the CLI ------------------------------------------------------------------------------


def test_run_over_a_stream_that_drops_out_reconnects_and_summarises(mjpeg):
    server = mjpeg(fps=50, drop_after=10)
    r = invoke("run", FACE, "--source", server.url, "--json", "--max-frames", "30", "--reconnect", "10")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    frames, summary = lines[:-1], lines[-1]["summary"]
    assert len(frames) == 30 and server.connections == 2
    assert summary["processed"] == 30 and summary["reconnects"] == 1
    assert summary["frames_in"] == summary["processed"] + summary["dropped"]
    assert summary["latency_ms"]["p50"] > 0 and summary["fps"] > 0
    assert set(summary["stages_ms_p50"]) >= {"preprocess", "inference", "postprocess"}
    first = frames[0]
    assert first["t_result"] >= first["t_capture"] > 1.6e9  # Unix seconds
    assert first["latency_ms"] >= sum(first["times_ms"].values()) - 1e-3
    assert "failed (a frame could not be read); reopening it" in r.stderr
    assert "1 reconnects" in r.stderr


def test_run_a_video_in_real_time_reports_frames_in_processed_and_dropped(tmp_path):
    video = gray_video(tmp_path / "clip.avi", n=20, fps=40)
    r = invoke("run", FACE, "--source", video, "--realtime", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[-1])["summary"]
    assert summary["frames_in"] == 20 and summary["processed"] + summary["dropped"] == 20
    assert "20 frames in" in r.stderr


def test_unreachable_stream_in_the_cli_is_one_red_line():
    r = invoke("run", FACE, "--source", "rtsp://127.0.0.1:9/x", "--timeout", "2")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "cannot open stream rtsp://127.0.0.1:9/x" in r.stderr and r.stderr.count("\n") == 1


def test_unknown_source_names_what_would_work(tmp_path):
    r = invoke("run", FACE, "--source", tmp_path / "clip.xyz")
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "no such file or folder" in r.stderr and "rtsp://" in r.stderr and "camera index" in r.stderr


def test_empty_frames_are_skipped_and_counted_and_a_run_of_them_is_a_failure():
    class Flaky(Device):
        def read(self):
            ok, frame = super().read()
            if self.session == 1 and self.reads % 3 == 0 or self.session == 2 and self.reads > 4:
                return True, None  # the driver said yes and gave nothing
            return ok, frame

    sessions = iter([Flaky(1, fail_at=9), Flaky(2), Device(3)])  # then unplugged; then only empties

    with LiveSource("camera 9", lambda: next(sessions), backoff=Backoff(first=0.01, give_up=5)) as src:
        for item in src:
            if int(item.data[0, 0, 0]) == 3:
                break
    assert src.skipped == 3 + 30 and "camera 9: an empty frame after frame" in src.skip_reasons[0]
    assert src.failures == ["device unplugged", "30 empty frames in a row"] and src.reconnects == 2


def test_live_sources_and_sinks_import_no_tensorflow():
    from conftest import run_python

    modules = ["edgekit.runtime.sources.live", "edgekit.runtime.sources.stream", "edgekit.runtime.pipeline"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "from edgekit.runtime.sinks import SINKS\nSINKS.names()\n"  # every sink module
    code += "from edgekit.runtime.sources import source_kind\nsource_kind('rtsp://x/y')\n"
    code += "print([m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules])"
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_video_file_over_http_plays_by_its_clock_and_ends(tmp_path):
    gray_video(tmp_path / "clip.avi", n=20, fps=40)
    handler_cls = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    handler = lambda *a: handler_cls(*a, directory=str(tmp_path))  # noqa: E731
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/clip.avi"
        with open_source(url) as src:
            got = [item.index for item in src]  # ends at the file's end: no reconnecting forever
        assert src.read == 20 and src.reconnects == 0 and src.error is None
        assert len(got) + src.dropped == 20
    finally:
        httpd.shutdown()
        httpd.server_close()
