"""`--serve` with plain HTTP clients: every route, the MJPEG stream read by OpenCV itself, `/results`
against `--json`, `/metrics` through Prometheus's own parser, the token, the 503s, a viewer that
stalls, a client that never finishes its headers, errors as one sentence, and Ctrl-C. The model is
the shipped BlazeFace; the sources are generated videos and an MJPEG camera served by the test.
Every client talks to loopback, a bounded number of times."""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import make_video
from test_live import MjpegServer

from edgekit.errors import ConfigError
from edgekit.runtime.pipeline import Pipeline, RunOptions
from edgekit.runtime.serve import ServeOptions
from edgekit.runtime.sources import SourceOptions

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

FACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"
EDGEKIT = [sys.executable, "-m", "edgekit.cli"]


def counting_video(path: Path, n: int, fps: float = 30.0, size=(160, 120)) -> Path:
    """Frame i is a flat gray of 2*i (mod 256), so a frame read back says which it was."""
    w, h = size
    return make_video(path, [np.full((h, w, 3), (2 * i) % 256, np.uint8) for i in range(n)], fps=fps)


class Served:
    """A pipeline served on a free loopback port and run on a thread until `stop()`."""

    def __init__(self, spec, serve: ServeOptions | None = None, **options) -> None:
        serve = serve or ServeOptions(port=0)
        self.pipeline = Pipeline.open(FACE, spec, RunOptions(serve=serve, **options))
        self.port = self.pipeline.server.port
        self.base = f"http://127.0.0.1:{self.port}"
        self.processed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in self.pipeline:
            self.processed += 1

    def wait_for(self, processed: int, timeout: float = 10.0) -> None:
        end = time.perf_counter() + timeout
        while self.processed < processed and time.perf_counter() < end:
            time.sleep(0.02)
        assert self.processed >= processed, f"only {self.processed} results in {timeout} s"

    def stop(self) -> None:
        self.pipeline.source.close()  # a live source ends its iterator; the run's thread then ends
        self.thread.join(10)
        self.pipeline.close()


@pytest.fixture()
def serve():
    started: list[Served] = []

    def make(spec, **kw) -> Served:
        started.append(Served(spec, **kw))
        return started[-1]

    yield make
    for s in started:
        s.stop()


@pytest.fixture()
def camera():
    """An MJPEG camera over HTTP (the test's own server) at 30 fps: a live source that never ends."""
    servers: list[MjpegServer] = []

    def make(**kw) -> str:
        servers.append(MjpegServer(**{"fps": 30.0, "size": (160, 120), **kw}))
        return servers[-1].url

    yield make
    for s in servers:
        s.close()


def get(url: str, headers: dict | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def metrics(base: str, query: str = "") -> dict[str, float]:
    """/metrics as {'name{labels}': value} (feed 0's labels dropped from the key)."""
    status, _, body = get(base + "/metrics" + query)
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key.replace('feed="0",', "").split("{source=")[0]] = float(value)
    return out


def eventually(check, timeout: float = 5.0) -> bool:
    """Whether `check()` comes true within `timeout` seconds (a closed client is noticed at the
    server's next write)."""
    end = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > end:
            return False
        time.sleep(0.05)
    return True


def sse_events(url: str, count: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    """The first `count` events of an SSE stream, as (event name, data)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=timeout)
    conn.request("GET", "/" + rest)
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    events, name, data = [], "message", []
    end = time.perf_counter() + timeout
    while len(events) < count and time.perf_counter() < end:
        line = response.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            events.append((name, "\n".join(data)))
            name, data = "message", []
    conn.close()
    return events


SEPARATOR = b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"  # after each frame, the next part


def mjpeg_frames(url: str, count: int, timeout: float = 10.0) -> list[bytes]:
    """The first `count` JPEGs of a multipart/x-mixed-replace stream, parsed by hand: each part
    ends where the next boundary starts."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=timeout)
    conn.request("GET", "/" + rest)
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += response.read1(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    assert head == b"--frame\r\nContent-Type: image/jpeg"
    frames = []
    while len(frames) < count:
        while SEPARATOR not in buf:
            chunk = response.read1(65536)
            assert chunk, "the stream ended"
            buf += chunk
        jpeg, buf = buf.split(SEPARATOR, 1)
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"  # a whole JPEG
        frames.append(jpeg)
    conn.close()
    return frames


# -- the routes ---------------------------------------------------------------------------------------


def test_every_route_answers_and_nothing_else_does(serve, camera):
    run = serve(camera())
    run.wait_for(5)
    status, headers, page = get(run.base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"EventSource" in page
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    assert get(run.base + "/healthz")[:3:2] == (200, b"ok\n")
    status, headers, jpeg = get(run.base + "/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    for path in (
        "/nothing",
        "/../../etc/passwd",
        "/page.html",
        "/%2e%2e/etc/passwd",
        "/stream.mjpg/x",
        "/snapshot.jpg?feed=%C2%B2",
    ):
        assert get(run.base + path)[0] == 404, path
    assert get(run.base + "/stream.mjpg?feed=1")[0] == 404  # one source: feed 0 only
    conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
    conn.request("POST", "/", body=b"x")
    assert conn.getresponse().status in (405, 400)  # nothing served changes anything
    conn.close()


def test_opencv_reads_the_stream_and_sees_the_newest_frames(serve, tmp_path):
    video = counting_video(tmp_path / "count.avi", 90, fps=30)
    run = serve(str(video), source=SourceOptions(realtime=True))
    cap = cv2.VideoCapture(run.base + "/stream.mjpg", cv2.CAP_FFMPEG)
    assert cap.isOpened()
    levels = []
    for _ in range(20):
        ok, frame = cap.read()
        assert ok and frame.shape == (120, 160, 3)
        levels.append(int(np.median(frame)))
    cap.release()
    assert len(set(levels)) > 5 and levels == sorted(levels)  # it moves on, never back


def test_results_carry_the_json_lines_objects(tmp_path):
    """`edgekit run --json --serve`: each /results event is the object of the stdout line of the
    same frame."""
    video = counting_video(tmp_path / "count.avi", 90, fps=30)
    proc = subprocess.Popen(
        [
            *EDGEKIT,
            "run",
            str(FACE),
            "--source",
            str(video),
            "--realtime",
            "--json",
            "--serve",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = wait_for_url(proc)
        events = sse_events(url + "results", 25)
    finally:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = {json.loads(line).get("index"): json.loads(line) for line in out.splitlines()}
    assert events[0][0] == "info" and json.loads(events[0][1])["task"] == "detect"
    records = [json.loads(data) for name, data in events if name == "message"]
    assert len(records) >= 15 and any(name == "figures" for name, _ in events)
    for rec in records:
        assert rec == lines[rec["index"]]
    assert [r["index"] for r in records] == sorted({r["index"] for r in records})


def wait_for_url(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The URL `edgekit run --serve` prints on stderr."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        line = proc.stderr.readline()
        if "watch it at " in line:
            return line.split("watch it at ")[1].split()[0]
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no URL from edgekit: {proc.stderr.read()}")


def test_metrics_are_prometheus_text_with_per_stage_histograms(serve, camera):
    parser = pytest.importorskip("prometheus_client.parser")
    run = serve([camera(), camera()])
    run.wait_for(10)
    _, headers, body = get(run.base + "/metrics")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(body.decode())}
    assert {
        "edgekit_frames_in",
        "edgekit_frames_processed",
        "edgekit_frames_dropped",
        "edgekit_errors",
    } <= set(families)
    assert {
        "edgekit_source_reconnects",
        "edgekit_viewers",
        "edgekit_latency_seconds",
        "edgekit_stage_seconds",
    } <= set(families)
    processed = {s.labels["feed"]: s.value for s in families["edgekit_frames_processed"].samples}
    assert set(processed) == {"0", "1"} and all(v > 0 for v in processed.values())
    stages = {s.labels["stage"] for s in families["edgekit_stage_seconds"].samples}
    assert stages == {"preprocess", "inference", "postprocess"}
    counts = [s for s in families["edgekit_stage_seconds"].samples if s.name.endswith("_count")]
    infinite = [s for s in families["edgekit_stage_seconds"].samples if s.labels.get("le") == "+Inf"]
    assert sorted(s.value for s in counts) == sorted(s.value for s in infinite)
    assert families["edgekit_info"].samples[0].labels["backend"] == "litert"


# -- watching never slows the model ----------------------------------------------------------------


def test_frames_are_encoded_only_while_watched_and_once_whoever_watches(serve, camera):
    run = serve(camera(), serve=ServeOptions(port=0, max_fps=1000))
    run.wait_for(20)
    assert metrics(run.base)["edgekit_jpeg_encoded_total"] == 0  # no one watched: nothing encoded
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(mjpeg_frames(run.base + "/stream.mjpg", 15)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(got) == 3 and eventually(lambda: metrics(run.base)["edgekit_viewers"] == 0)  # counted out
    m = metrics(run.base)
    encoded = m["edgekit_jpeg_encoded_total"]
    assert 15 <= encoded <= m["edgekit_frames_processed_total"]  # at most once per frame
    assert encoded < 2 * 15  # three viewers shared the encodes: not one encode each
    time.sleep(0.5)
    idle = metrics(run.base)["edgekit_jpeg_encoded_total"]
    time.sleep(0.5)
    assert metrics(run.base)["edgekit_jpeg_encoded_total"] == idle  # no viewer: encoding stopped


def test_more_viewers_than_allowed_get_503(serve, camera):
    run = serve(camera(), serve=ServeOptions(port=0, max_viewers=2))
    run.wait_for(3)
    held = []
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
        conn.request("GET", "/stream.mjpg")
        assert conn.getresponse().status == 200
        held.append(conn)
    status, headers, body = get(run.base + "/stream.mjpg")
    assert status == 503 and b"--max-viewers 2" in body and headers["Retry-After"] == "5"
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", run.port, timeout=5)
        conn.request("GET", "/results")
        assert conn.getresponse().status == 200
        held.append(conn)
    assert get(run.base + "/results")[0] == 503
    m = metrics(run.base)
    assert m["edgekit_viewers"] == 2 and m["edgekit_viewers_refused_total"] == 1
    assert m["edgekit_results_readers"] == 2
    for conn in held:
        conn.close()
    assert eventually(lambda: metrics(run.base)["edgekit_viewers"] == 0)
    assert len(mjpeg_frames(run.base + "/stream.mjpg", 1)) == 1  # a place is free again
    assert get(run.base + "/snapshot.jpg")[0] == 200


def test_a_stalled_viewer_is_let_go_and_the_others_go_on(serve, camera):
    """A client that asks for the stream and never reads is dropped after `stall` seconds, while a
    viewer beside it keeps getting frames; noisy 640x480 frames fill the socket buffers fast."""
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    run = serve(camera(image=noise, fps=30, size=(640, 480)), serve=ServeOptions(port=0, stall=1.0))
    run.wait_for(3)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", run.port))
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    try:
        end = time.perf_counter() + 20
        while metrics(run.base)["edgekit_viewers_dropped_total"] < 1 and time.perf_counter() < end:
            assert len(mjpeg_frames(run.base + "/stream.mjpg", 2)) == 2  # the other viewer is served
        assert metrics(run.base)["edgekit_viewers_dropped_total"] == 1
        assert eventually(lambda: metrics(run.base)["edgekit_viewers"] == 0)
    finally:
        stalled.close()


def test_a_client_that_never_finishes_its_request_is_cut_off(serve, camera):
    run = serve(camera(), serve=ServeOptions(port=0, header_timeout=1.0))
    slow = socket.create_connection(("127.0.0.1", run.port), timeout=10)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    start = time.perf_counter()
    assert slow.recv(100) == b""  # closed by the server
    assert time.perf_counter() - start < 8
    slow.close()
    big = socket.create_connection(("127.0.0.1", run.port), timeout=10)
    big.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    answer = big.recv(100)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")  # over 8 KiB of headers: refused
    big.close()
    assert get(run.base + "/healthz")[0] == 200


def test_viewers_coming_and_going_leave_nothing_behind(serve, camera):
    run = serve(camera())
    run.wait_for(3)
    threads_before = threading.active_count()

    def rss_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    mjpeg_frames(run.base + "/stream.mjpg", 2)
    sse_events(run.base + "/results", 2)
    before = rss_kb()
    for _ in range(40):
        mjpeg_frames(run.base + "/stream.mjpg", 2)
        sse_events(run.base + "/results", 2)
    assert eventually(lambda: not run.pipeline.server.streams)
    assert metrics(run.base)["edgekit_results_readers"] == 0 and metrics(run.base)["edgekit_viewers"] == 0
    assert threading.active_count() == threads_before  # no thread per viewer
    assert rss_kb() - before < 30_000  # peak memory: not a frame per viewer that came


# -- safe by default -------------------------------------------------------------------------------


def test_any_address_but_loopback_needs_the_token(serve, camera):
    run = serve(camera(), serve=ServeOptions(host="0.0.0.0", port=0))
    token = run.pipeline.server.token
    assert token and len(token) >= 16 and f"?token={token}" in run.pipeline.url
    run.wait_for(3)
    for path in ("/", "/stream.mjpg", "/snapshot.jpg", "/results", "/metrics", "/healthz"):
        status, headers, body = get(run.base + path)
        assert status == 401 and b"needs its token" in body, path
        assert get(run.base + path + "?token=" + token[:-1] + "x")[0] == 401
    assert get(run.base + "/healthz?token=" + token)[0] == 200
    assert get(run.base + "/metrics", {"Authorization": f"Bearer {token}"})[0] == 200


def test_a_given_token_is_asked_for_and_no_auth_opens_a_lan_on_purpose(serve, camera):
    run = serve(camera(), serve=ServeOptions(host="0.0.0.0", port=0, token="my-token-123"))
    assert run.pipeline.server.token == "my-token-123"
    assert get(run.base + "/healthz")[0] == 401
    opened = serve(camera(), serve=ServeOptions(host="0.0.0.0", port=0, no_auth=True))
    opened.wait_for(2)
    assert opened.pipeline.server.token is None and get(opened.base + "/healthz")[0] == 200
    with pytest.raises(ConfigError, match="contradict"):
        ServeOptions(token="my-token-123", no_auth=True)


def test_on_loopback_a_page_elsewhere_cannot_read_it_through_dns_rebinding(serve, camera):
    run = serve(camera())
    run.wait_for(2)
    assert get(run.base + "/healthz", {"Host": "attacker.example:8080"})[0] == 403
    assert get(run.base + "/healthz", {"Host": f"localhost:{run.port}"})[0] == 200


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGEKIT, "run", str(FACE), *args], capture_output=True, text=True, timeout=60)


def test_a_port_or_address_that_cannot_be_served_is_one_sentence(tmp_path):
    video = counting_video(tmp_path / "count.avi", 3)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        cases = {
            f"127.0.0.1:{port}": f"port {port} is in use",
            "192.0.2.123:8080": "192.0.2.123 is not an address of this machine",
            "no-such-host.invalid:8080": "not an address or a name this machine can resolve",
            "8080:x": "--serve takes [HOST:]PORT",
            "70000": "is not a port",
        }
        for given, said in cases.items():
            proc = run_cli("--source", str(video), "--serve", given)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 1 and len(lines) == 1 and said in lines[0], (given, proc.stderr)
            assert "Traceback" not in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody")
def test_a_privileged_port_is_one_sentence(tmp_path):
    video = counting_video(tmp_path / "count.avi", 3)
    tmp_path.chmod(0o755)
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *EDGEKIT, "run", str(FACE)]
        + ["--source", str(video), "--serve", "80"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 1 or "privileged" not in proc.stderr:  # the venv unreadable to nobody, say
        pytest.skip(f"nobody could not run edgekit here: {proc.stderr[-300:]}")
    assert len(lines) == 1 and "port 80 is privileged" in lines[0]


def test_ctrl_c_stops_the_sources_the_server_and_frees_the_port(camera):
    url = camera()
    proc = subprocess.Popen(
        [*EDGEKIT, "run", str(FACE), "--source", url, "--serve", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = wait_for_url(proc).rstrip("/")
    port = int(base.rsplit(":", 1)[1])
    viewer = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    viewer.request("GET", "/stream.mjpg")
    response = viewer.getresponse()
    assert response.status == 200 and response.readline() == b"--frame\r\n"
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, err
    assert " processed" in err and "Traceback" not in err
    try:  # the viewer's stream ends with the run (not a timeout)
        while response.read(65536):
            pass
    except (http.client.IncompleteRead, ConnectionError):
        pass
    viewer.close()
    with socket.socket() as again:  # a new server can listen there at once (as any server binds)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
        again.listen()


def test_healthz_says_why_when_a_source_is_down(serve, camera):
    dead = MjpegServer(fps=30, size=(160, 120))
    try:
        run = serve([camera(), dead.url], source=SourceOptions(reconnect=30, timeout=1))
        run.wait_for(10)
        assert get(run.base + "/healthz")[0] == 200
        dead.close()  # unplugged, and not coming back
        end = time.perf_counter() + 15
        while get(run.base + "/healthz")[0] == 200 and time.perf_counter() < end:
            time.sleep(0.2)
        status, _, body = get(run.base + "/healthz")
        assert status == 503 and b"dropped out and is being reopened" in body
        assert metrics(run.base)["edgekit_up"] == 0
        before = run.processed
        time.sleep(0.5)
        assert run.processed > before  # the other source goes on
    finally:
        dead.close()


def test_audio_and_text_models_get_a_log_not_a_picture(tmp_path):
    """A model whose inputs are not pictures: no stream, and the page shows results as a log."""
    from edgekit.runtime.serve.hub import Hub
    from edgekit.runtime.serve.server import Server
    from edgekit.runtime.sources.many import Feed

    class Lines:
        kind, live, skipped, skip_reasons, name = "text", False, 0, [], "lines.txt"

    hub = Hub(
        [Feed(0, Lines(), pumped=False)],
        lambda f, r: f,
        {"task": "classify-text"},
        False,
        max_fps=30,
        quality=80,
    )
    from edgekit.runtime.serve import bind

    server = Server(hub, ServeOptions(port=0), bind(ServeOptions(port=0)))
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert get(base + "/stream.mjpg")[0] == 404 and b"not pictures" in get(base + "/snapshot.jpg")[2]
        assert json.loads(sse_events(base + "/results", 1)[0][1])["picture"] is False
    finally:
        server.stop()
        hub.stop()
