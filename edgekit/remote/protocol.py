"""What a device's `edgekit bench --stream-rows` says on stderr besides its progress, for the
machine that started it over `--on`: the host record first, then each row as soon as it is measured,
one JSON document per line. The rows finished before an interrupt, a lost connection or a killed
process are then already on this side: the result file comes only at the end.

Both sides read this module: the device writes the lines, `edgekit.remote.fleet` reads them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

HOST = "@edgekit-host "
ROW = "@edgekit-row "
WRAPPER = "@edgekit-remote: "  # said by the shell script around the device's edgekit (device.py)


def stream_rows(
    progress: Callable[[int, int, Any], None], host: dict[str, Any] | None = None, stream: Any = None
):
    """`progress` that also writes each finished row (and, at once, the host record) as one line."""
    if host is None:
        from edgekit.benchmark.results import machine

        host = machine()
    out = stream or sys.stderr
    out.write(HOST + json.dumps(host) + "\n")
    out.flush()

    def show(done: int, total: int, row: Any) -> None:
        out.write(ROW + json.dumps(asdict(row)) + "\n")
        out.flush()
        progress(done, total, row)

    return show


def parse(line: str) -> tuple[str, Any] | None:
    """("host", record), ("row", dict), ("wrapper", text) for a protocol line; None for any other
    (progress, warnings: shown to the user as they are)."""
    for kind, prefix in (("host", HOST), ("row", ROW)):
        if line.startswith(prefix):
            try:
                value = json.loads(line[len(prefix) :])
            except ValueError:
                return None
            return (kind, value) if isinstance(value, dict) else None
    if line.startswith(WRAPPER):
        return "wrapper", line[len(WRAPPER) :].strip()
    return None
