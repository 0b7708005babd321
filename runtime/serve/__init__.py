"""Watch a run from any browser: `edgekit run MODEL --source S --serve [HOST:]PORT`.

The page (`/`) shows each source's annotated frame, live figures and latest results; beside it
`/stream.mjpg`, `/snapshot.jpg`, `/results` (Server-Sent Events carrying the `--json` objects),
`/metrics` (Prometheus text) and `/healthz`. The HTTP side is Tornado (one event loop on its own
thread); `hub.py` is what the run and the server share, `server.py` the routes, `metrics.py` the
Prometheus text.

Watching never slows the model: the run only drops a reference to its newest result into a slot;
frames are drawn and JPEG-encoded on another thread, only while someone watches, at most once per
processed frame (and at most `max_fps` a second) whoever watches, and each viewer is sent the
newest frame, skipping the rest.

Safe by default: it binds 127.0.0.1; any other address needs a token (given, or generated and
printed as the URL to open) unless `no_auth` says otherwise.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from dataclasses import dataclass

from edgekit.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
_BIND = re.compile(r"^(?:(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]*):)?(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class ServeOptions:
    """Where and how a run is served. `token`: what a client must show (None: none on a loopback
    address, a generated one on any other); `no_auth`: serve any address with no token (a LAN
    chosen to be open). `max_viewers`: streams of one source at once (and `/results` readers); more
    are answered 503. `stall`: seconds a viewer may take to accept a frame before it is dropped."""

    host: str = DEFAULT_HOST
    port: int = 8080
    token: str | None = None
    no_auth: bool = False
    max_viewers: int = 4
    stall: float = 10.0
    # JPEG frames a second per source at most, whoever watches: what viewers cost is mostly the
    # bytes sent (640x480 at quality 75 is ~40 kB a frame; five viewers at 15 fps, 3 MB/s)
    max_fps: float = 15.0
    quality: int = 75
    header_timeout: float = 10.0  # seconds a client has to send its request line and headers

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--serve port {self.port} is not a port: give 1024-65535, such as 8080")
        if not self.host:
            raise ConfigError("--serve needs a host or none (HOST:PORT or PORT), not an empty host")
        if self.max_viewers < 1:
            raise ConfigError(f"--max-viewers must be at least 1, not {self.max_viewers}")
        if self.token is not None:
            if self.no_auth:
                raise ConfigError("--token and --no-auth contradict each other: give one of them")
            if len(self.token) < 8 or not re.fullmatch(r"[A-Za-z0-9._~-]+", self.token):
                raise ConfigError(
                    "--token needs 8 characters or more, letters, digits and . _ ~ - only (it goes in a URL)"
                )
        for name in ("stall", "max_fps", "header_timeout"):
            if getattr(self, name) <= 0:
                flag = "--serve-fps" if name == "max_fps" else f"serve option {name}"
                raise ConfigError(f"{flag} must be positive, not {getattr(self, name)}")
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"JPEG quality takes 1-100, not {self.quality}")

    @classmethod
    def parse(cls, text: str, **options: object) -> ServeOptions:
        """`8080`, `0.0.0.0:8080`, `localhost:8080` or `[::]:8080` -> options (the others as given)."""
        found = _BIND.match(text.strip())
        if not found:
            raise ConfigError(f"--serve takes [HOST:]PORT such as 8080 or 0.0.0.0:8080, not {text!r}")
        host = (found.group("host") or DEFAULT_HOST).strip("[]")
        return cls(host=host, port=int(found.group("port")), **options)  # type: ignore[arg-type]

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the address served."""
        return is_loopback(self.host)

    @property
    def needs_token(self) -> bool:
        return self.token is not None or not (self.loopback or self.no_auth)


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address, or a name that resolves to loopback addresses only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = {a[4][0] for a in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def bind_error(host: str, port: int, e: OSError) -> ConfigError:
    """One sentence for a port or address that cannot be served on."""
    where = f"{host}:{port}"
    if isinstance(e, socket.gaierror):
        return ConfigError(f"--serve {where}: {host} is not an address or a name this machine can resolve")
    if e.errno == errno.EADDRINUSE:
        return ConfigError(f"--serve {where}: port {port} is in use; stop what holds it or give another port")
    if e.errno == errno.EACCES:
        return ConfigError(
            f"--serve {where}: port {port} is privileged (below 1024) and this user may not open it; "
            "use 1024 or above, such as 8080"
        )
    if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return ConfigError(
            f"--serve {where}: {host} is not an address of this machine; give one of its own, "
            "127.0.0.1 (this machine only) or 0.0.0.0 (every network)"
        )
    return ConfigError(f"--serve {where}: cannot listen there ({e.strerror or e})")


def bind(options: ServeOptions) -> list[socket.socket]:
    """The listening sockets for `options` (every address the host names), or ConfigError saying
    in one sentence why not: a port in use, a privileged port, an address that is not this
    machine's or not an address at all."""
    from tornado.netutil import bind_sockets

    try:
        return bind_sockets(options.port, options.host, backlog=64)
    except OSError as e:
        raise bind_error(options.host, options.port, e) from None


def check_bind(options: ServeOptions) -> None:
    """Fail now if `options` cannot be served (before a model loads or a camera opens): binds the
    address and lets it go."""
    for s in bind(options):
        s.close()


def local_address() -> str | None:
    """This machine's address on its default route (what another machine on the LAN reaches it
    by), found without sending anything; None where there is no route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 9))  # a UDP connect picks a route and sends nothing
            return s.getsockname()[0]
        except OSError:
            return None
