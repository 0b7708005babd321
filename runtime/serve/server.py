"""The routes of `--serve`, on Tornado's HTTP server, run by one asyncio event loop on its own thread.

Only these answer (GET; anything else is 404 or 405, and nothing is read from disk):
`/` the page, `/stream.mjpg` (`?feed=N`: multipart JPEG, the newest frame each time),
`/snapshot.jpg` (`?feed=N`), `/results` (Server-Sent Events: every `--json` object, plus `figures`
once a second), `/metrics` (Prometheus text), `/healthz` (200 `ok`, or 503 with the reasons).

Bounds: a client has `header_timeout` seconds to send its request line and headers (8 KiB at
most; no body), a viewer that takes no frame for `stall` seconds is let go, and each source has
at most `max_viewers` streams (`/results` as many): more are answered 503. Where a token is needed
it is taken from `?token=`, or `Authorization: Bearer`, and compared in constant time; on a
loopback address with no token, requests must name a loopback host (a web page elsewhere cannot
read the stream through DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
from datetime import timedelta
from importlib import resources
from typing import Any

from tornado import gen, iostream, web
from tornado.httpserver import HTTPServer

from edgekit.runtime.serve import ServeOptions, local_address
from edgekit.runtime.serve.hub import Hub
from edgekit.runtime.serve.metrics import CONTENT_TYPE, prometheus_text
from edgekit.runtime.sinks.json import record
from edgekit.runtime.sources import Item

MAX_HEADER = 8192  # bytes of request line and headers
PART = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n"  # a boundary and the headers of one JPEG
SSE_TICK = 0.1  # seconds between /results sends (results that came meanwhile go together)
FIGURES_EVERY = 1.0  # seconds between figures events
KEEPALIVE = 15.0  # seconds of silence before an SSE comment line (proxies close idle streams)
BACKLOG = 20  # results a new /results reader is sent from before it came
WAIT_FRAME = 5.0  # seconds a snapshot waits for a frame newer than the request


def _quiet(*_: Any) -> None:  # the access log: requests are counted, not printed
    pass


class _Handler(web.RequestHandler):
    """Every route: the token (or a loopback Host), plain-text errors, headers that keep a browser
    from caching, framing or sniffing what is served."""

    server: Server

    def initialize(self, server: Server) -> None:
        self.server = server
        self.hub = server.hub
        self.gone = False

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")

    def prepare(self) -> None:
        token = self.server.token
        if token is not None:
            given = self.get_query_argument("token", None)
            auth = self.request.headers.get("Authorization", "")
            if given is None and auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
            if given is None or not hmac.compare_digest(
                given.encode("utf-8", "surrogateescape"), token.encode("utf-8")
            ):
                self.set_header("WWW-Authenticate", 'Bearer realm="edgekit"')
                self._refuse(401, "this edgekit needs its token: open the URL it printed (?token=...)")
        elif not self.server.host_allowed(self.request.host):
            self._refuse(403, "this edgekit serves this machine only: open it as 127.0.0.1 or localhost")

    def _refuse(self, status: int, why: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(why + "\n")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n")

    def on_connection_close(self) -> None:
        self.gone = True

    def feed(self) -> Any:
        """The source `?feed=N` names (0 when not given), or None after a 404 saying which exist."""
        text = self.get_query_argument("feed", "0")
        n = len(self.hub.feeds)
        if not (text.isascii() and text.isdigit()) or int(text) >= n:
            self._refuse(404, f"no feed {text[:20]!r}: this run has feeds 0-{n - 1}")
            return None
        return self.hub.feeds[int(text)]

    def pictures(self) -> bool:
        if not self.hub.picture:
            self._refuse(404, "this model's inputs are not pictures: see /results or the page")
        return self.hub.picture

    async def send(self, data: bytes) -> bool:
        """Write and wait until the client took it; False when it is gone or stalled (let go)."""
        if self.gone:
            return False
        self.write(data)
        try:
            await gen.with_timeout(
                timedelta(seconds=self.server.options.stall),
                self.flush(),
                quiet_exceptions=(iostream.StreamClosedError,),
            )
        except iostream.StreamClosedError:
            return False
        except (asyncio.TimeoutError, gen.TimeoutError):
            self.stalled()
            self.request.connection.close()
            return False
        return True

    def stalled(self) -> None:
        """A viewer that did not take what it was sent in time."""


class PageHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'",
        )
        self.write(self.server.page)


class StreamHandler(_Handler):
    """`/stream.mjpg`: the source's newest JPEG each time one is made; older ones are skipped."""

    async def get(self) -> None:
        f = self.feed()
        if f is None or not self.pictures():
            return
        if f.viewers >= self.server.options.max_viewers:
            f.refused += 1
            self.set_header("Retry-After", "5")
            n = self.server.options.max_viewers
            self._refuse(503, f"{n} viewer{'s' * (n > 1)} already watch feed {f.index} (--max-viewers {n})")
            return
        f.viewers += 1
        self.hub.want_frames()
        self._feed = f
        self.server.streams.add(self)
        try:
            self.set_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            # each frame is followed at once by the next part's boundary and headers: a browser
            # shows a part only once it has read the next one's headers, so headers sent with each
            # frame (Content-Length among them) would show every frame one frame late (Chromium:
            # 95 ms capture to screen at 15 fps, against 29 ms this way). Without a length, a
            # client finds a frame's end at the boundary, as multipart allows (FFmpeg does).
            sent, head = 0, PART
            while not (self.gone or self.server.stopping):
                jpeg = f.jpeg
                if jpeg is None or jpeg[0] <= sent:
                    await self.server.next_jpeg(f.index, 1.0)
                    continue
                sent, data = jpeg[0], jpeg[1]
                if not await self.send(head + data + b"\r\n" + PART):
                    break
                head = b""
        finally:
            f.viewers -= 1
            self.server.streams.discard(self)

    def stalled(self) -> None:
        self._feed.dropped_viewers += 1


class SnapshotHandler(_Handler):
    """`/snapshot.jpg`: the newest frame (encoded now if no one was watching)."""

    async def get(self) -> None:
        f = self.feed()
        if f is None or not self.pictures():
            return
        end = time.perf_counter() + WAIT_FRAME
        f.waiting += 1
        try:
            self.hub.want_frames()
            while time.perf_counter() < end and not self.server.stopping:
                latest, jpeg = f.latest, f.jpeg
                if jpeg is not None and (latest is None or jpeg[0] >= latest[0] or self.hub.ended):
                    break
                await self.server.next_jpeg(f.index, 0.25)
        finally:
            f.waiting -= 1
        jpeg = f.jpeg
        if jpeg is None:
            self.set_header("Retry-After", "1")
            self._refuse(503, f"no frame from feed {f.index} yet")
            return
        self.set_header("Content-Type", "image/jpeg")
        self.write(jpeg[1])


class ResultsHandler(_Handler):
    """`/results`: Server-Sent Events. Unnamed events carry exactly the `--json` objects; `info`
    (first) the model and sources, `figures` the live figures once a second, `end` the run's end."""

    async def get(self) -> None:
        srv, hub = self.server, self.hub
        if srv.results_readers >= srv.options.max_viewers:
            self.set_header("Retry-After", "5")
            self._refuse(503, f"{srv.options.max_viewers} readers already follow /results (--max-viewers)")
            return
        srv.results_readers += 1
        srv.streams.add(self)
        try:
            self.set_header("Content-Type", "text/event-stream; charset=utf-8")
            self.set_header("X-Accel-Buffering", "no")  # a proxy in front must not hold events back
            info = json.dumps(srv.info(), ensure_ascii=False)
            if not await self.send(f"retry: 2000\n\nevent: info\ndata: {info}\n\n".encode()):
                return
            last, next_figures, quiet_since = max(0, hub.seq - BACKLOG), 0.0, time.perf_counter()
            while not self.gone and (hub.ended is not None or not srv.stopping):  # `end` is sent
                parts = []
                for entry in hub.entries_after(last):
                    last = entry[0]
                    line = srv.json_of(entry)
                    if line:
                        parts.append(f"data: {line}\n\n")
                now = time.perf_counter()
                if now >= next_figures:
                    parts.append(f"event: figures\ndata: {srv.figures()}\n\n")
                    next_figures = now + FIGURES_EVERY
                if hub.ended is not None and not hub.entries_after(last):
                    ended = json.dumps({"ended": hub.ended})
                    await self.send(f"{''.join(parts)}event: end\ndata: {ended}\n\n".encode())
                    break
                if not parts and now - quiet_since > KEEPALIVE:
                    parts.append(": still here\n\n")
                if parts:
                    quiet_since = now
                    if not await self.send("".join(parts).encode()):
                        break
                await asyncio.sleep(SSE_TICK)
        finally:
            srv.results_readers -= 1
            srv.streams.discard(self)


class MetricsHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.write(prometheus_text(self.hub, self.server.results_readers))


class HealthHandler(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        problems = self.hub.problems()
        if problems:
            self.set_status(503)
            self.write("".join(p + "\n" for p in problems))
        else:
            self.write("ok\n")


ROUTES = [
    (r"/", PageHandler),
    (r"/stream\.mjpg", StreamHandler),
    (r"/snapshot\.jpg", SnapshotHandler),
    (r"/results", ResultsHandler),
    (r"/metrics", MetricsHandler),
    (r"/healthz", HealthHandler),
]


class Server:
    """The HTTP side of `--serve`, on its own thread: `start()` returns once it listens on
    `sockets` (already bound: `edgekit.runtime.serve.bind`), `stop()` closes every connection and
    the port and joins the thread."""

    def __init__(self, hub: Hub, options: ServeOptions, sockets: list[socket.socket]) -> None:
        self.hub = hub
        self.options = options
        self.sockets = sockets
        self.port = sockets[0].getsockname()[1]
        self.token = options.token or (secrets.token_urlsafe(16) if options.needs_token else None)
        self.page = resources.files(__package__).joinpath("page.html").read_bytes()
        self.results_readers = 0
        self.streams: set[_Handler] = set()
        self.stopping = False
        self._events: list[asyncio.Event] = []
        self._json: dict[int, str] = {}
        self._figures: tuple[float, str] = (0.0, "{}")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: HTTPServer | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgekit-serve http", daemon=True)

    # -- addresses -----------------------------------------------------------------------------

    def url(self, host: str | None = None) -> str:
        """The URL to open (with the token where one is needed); `host` replaces the bound one."""
        host = host or self.options.host
        if host in ("0.0.0.0", "::", ""):
            host = local_address() or socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        query = f"?token={self.token}" if self.token else ""
        return f"http://{shown}:{self.port}/{query}"

    def host_allowed(self, host_header: str) -> bool:
        """Whether a request's Host names this machine's loopback (checked where no token is)."""
        if self.options.no_auth and not self.options.loopback:
            return True  # an open LAN chosen with --no-auth: any name that reaches it
        name = (
            host_header.rsplit("]", 1)[0].lstrip("[")
            if host_header.startswith("[")
            else host_header.split(":")[0]
        )
        if name.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    # -- what the handlers share -------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {
            **self.hub.info,
            "picture": self.hub.picture,
            "feeds": [{"feed": f.index, "name": f.name} for f in self.hub.feeds],
        }

    def json_of(self, entry: tuple) -> str:
        """A logged result as its `--json` line, made once whoever reads it ('' if not JSON)."""
        found = self._json.get(entry[0])
        if found is None:
            seq, feed, name, index, t_capture, prediction = entry
            try:
                found = json.dumps(
                    record(Item(None, index, name, t_capture, feed), prediction),
                    ensure_ascii=False,
                    allow_nan=False,
                )
            except ValueError:  # NaN is not JSON: such a result is no line, as with --json
                found = ""
            if len(self._json) > 4 * len(self.hub.log) + 64:
                oldest = seq - len(self.hub.log)
                self._json = {k: v for k, v in self._json.items() if k > oldest}
            self._json[entry[0]] = found
        return found

    def figures(self) -> str:
        """The figures as JSON, made at most once a second whoever reads them."""
        made, text = self._figures
        now = time.perf_counter()
        if now - made >= 0.9 * FIGURES_EVERY:
            text = json.dumps(self.hub.figures())
            self._figures = (now, text)
        return text

    async def next_jpeg(self, feed: int, timeout: float) -> None:
        """Wait (at most `timeout`) for the encoder to make feed's next JPEG."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._events[feed].wait(), timeout)

    def _jpeg_ready(self, feed: int) -> None:  # on the loop: wake every viewer of the feed
        event, self._events[feed] = self._events[feed], asyncio.Event()
        event.set()

    # -- the thread ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10.0)
        if self._failed is not None:
            raise self._failed
        self.hub.start()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._events = [asyncio.Event() for _ in self.hub.feeds]
            app = web.Application(
                [(path, handler, {"server": self}) for path, handler in ROUTES],
                log_function=_quiet,
                compress_response=False,
            )
            # a hostile client's malformed request is its problem, not a line on the run's terminal
            logging.getLogger("tornado.general").setLevel(logging.ERROR)
            self._http = HTTPServer(
                app,
                idle_connection_timeout=self.options.header_timeout,
                body_timeout=self.options.header_timeout,
                max_header_size=MAX_HEADER,
                max_body_size=0,
                xheaders=False,
            )
            self._http.add_sockets(self.sockets)
            self.hub.on_jpeg = lambda feed: loop.call_soon_threadsafe(self._jpeg_ready, feed)
        except BaseException as e:
            self._failed = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self.hub.on_jpeg = None
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        self.stopping = True
        assert self._http is not None
        self._http.stop()  # the listening sockets: the port is free from here
        loop = asyncio.get_running_loop()
        until = loop.time() + 4 * SSE_TICK  # /results readers are told the run's end first
        while self.results_readers and loop.time() < until:
            await asyncio.sleep(SSE_TICK / 4)
        for handler in list(self.streams):
            with contextlib.suppress(Exception):
                handler.request.connection.close()
        for feed in range(len(self._events)):
            self._jpeg_ready(feed)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._http.close_all_connections(), 2.0)
        # the handlers see `stopping` or their closed connection within a second; cancelling them
        # instead would make Tornado try to send a 500 after their headers
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if left:
            await asyncio.wait(left, timeout=2.0)
        asyncio.get_running_loop().stop()

    def stop(self) -> None:
        """Close every connection and the listening sockets, and end the thread."""
        loop = self._loop
        if loop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown()))
            if self._thread is not threading.current_thread():
                self._thread.join(5.0)
        for s in self.sockets:  # closed by the server already; this is for one that never started
            s.close()
