"""A TCP line stream as a source (`tcp://host:port`): the way sensor gateways publish readings
(Node-RED's TCP out, Telegraf's socket writer, a microcontroller on the network), one reading per
line, read as `numbers:` reads a file (`runtime/sources/numbers.py`).

Every line is kept, in order: a forecaster's window needs each reading, so a slow model makes the
results late, never drops a reading (the kernel's socket buffer holds what waits). A connection
that closes is reopened with back-off for `--reconnect` seconds (0: the run ends with it); one that
cannot be made within `--timeout` seconds is one sentence. Only the standard library is used."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from edgekit.errors import ConfigError, SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind, SourceOptions
from edgekit.runtime.sources.live import Backoff
from edgekit.runtime.sources.numbers import read_lines

SCHEME = "tcp://"


def address(spec: str) -> tuple[str, int]:
    """`tcp://host:port` -> (host, port); anything else is one sentence."""
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"{spec!r}: give tcp://HOST:PORT, such as tcp://gateway.local:9000")
    return parts.hostname, port


class TcpLines(Source):
    """The lines a TCP server sends, as readings; reconnects with back-off when it goes away."""

    kind = "tcp"
    live = True

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        super().__init__()
        options = options or SourceOptions()
        self.spec = self.name = spec
        self.host, self.port = address(spec)
        self.timeout = options.timeout
        self.backoff = Backoff(give_up=options.reconnect)
        self.reconnects = 0
        self.error: str | None = None  # why the stream ended early, for the run's summary
        self.failures: list[str] = []
        self._sock: socket.socket | None = self._connect()  # an unreachable gateway: one sentence now

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as e:
            raise SourceError(
                f"cannot connect to {self.spec} ({e.strerror or e}): check the address and that the "
                "gateway is publishing there"
            ) from None
        sock.settimeout(None)  # readings may be minutes apart: only the connection is timed
        return sock

    def __iter__(self) -> Iterator[Item]:
        index = 0
        while self._sock is not None:
            with self._sock.makefile("rb") as lines:
                for item in read_lines(self, self.spec, lines, start=index):
                    index = item.index + 1
                    yield item
            self._drop()
            if not self._reopen():
                return

    def _reopen(self) -> bool:
        """After the server closed the connection: reconnect, backing off, for `--reconnect` s."""
        start = time.monotonic()
        for delay in self.backoff.delays():
            if time.monotonic() - start + delay > self.backoff.give_up:
                self.error = f"{self.spec} closed the connection and did not come back"
                return False
            time.sleep(delay)
            try:
                self._sock = self._connect()
            except SourceError as e:
                if len(self.failures) < 10:
                    self.failures.append(str(e))
                continue
            self.reconnects += 1
            return True
        return False

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._drop()


SOURCES.add(
    SourceKind(
        "tcp",
        "tcp://HOST:PORT for a gateway's line stream of readings (forecasters and tables)",
        lambda s: s.lower().startswith(SCHEME),
        TcpLines,
        produces="table",
        options=("reconnect", "timeout"),
    )
)
