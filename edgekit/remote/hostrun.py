"""One host's part of `edgekit bench --on`: the device script run over its transport (the files its
cache lacks sent by content digest, the bench under the device's lock, progress streamed back line
by line and prefixed with the host), its result file brought back, and every way it can fail said
as that host's rows with a reason and a remedy."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import signal
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from edgekit.benchmark.results import (
    SCHEMA_VERSION,
    BenchRow,
    default_result_path,
    load_result,
    result_doc,
)
from edgekit.errors import ConfigError, DataError, EdgekitError, first_line
from edgekit.remote import device, protocol
from edgekit.remote.hosts import Host
from edgekit.remote.transport import Transport

OOM_HINT = (
    "on a device that is most often the kernel's out-of-memory killer (`dmesg | grep -i oom` there): "
    "try a smaller --batch or file"
)


@dataclass
class HostRun:
    """What happened on one host."""

    host: Host
    status: str = "waiting"  # measured, failed, interrupted
    reason: str | None = None
    rows: list[BenchRow] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    path: Path | None = None
    schema_version: int = SCHEMA_VERSION
    files_sent: int = 0
    bytes_sent: int = 0
    files_cached: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "host": self.host.name,
            "target": self.host.target,
            "status": self.status,
            "reason": self.reason,
            "rows": len(self.rows),
            "edgekit": self.version,
            "arch": self.machine.get("arch") or self.facts.get("arch"),
            "python": self.machine.get("python") or self.facts.get("python"),
            "files_sent": self.files_sent,
            "bytes_sent": self.bytes_sent,
            "files_cached": self.files_cached,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "result": str(self.path) if self.path else None,
            "notes": self.notes,
        }


class Printer:
    """Lines from every host on one stream, whole, each prefixed with its host."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, host: str, text: str) -> None:
        with self.lock:
            self.stream.write(f"[{host}] {text}\n")
            self.stream.flush()


class _Failed(Exception):
    """The host cannot go on; the message is the sentence the user reads."""


class _Stopped(Exception):
    """Ctrl-C: the host stopped on request."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Counting:
    """A write-only file object that counts what goes through (the bytes sent to a device)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.count = raw, 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def _reader(stream: IO[bytes], sink: bytearray) -> threading.Thread:
    def read() -> None:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            sink.extend(chunk)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _signal_text(rc: int) -> str | None:
    """`killed by SIGKILL` for a shell status 128+N (or a negative Popen status)."""
    n = -rc if rc < 0 else rc - 128 if 128 < rc < 160 else None
    if n is None:
        return None
    try:
        return f"killed by {signal.Signals(n).name}"
    except ValueError:
        return f"killed by signal {n}"


def annotate(row: BenchRow) -> str | None:
    """A row's reason, with what a SIGKILLed row most likely means on a device."""
    if row.error and re.search(r"ended with code -9\b", row.error):
        return f"{row.error} ({OOM_HINT})"
    return row.error


@dataclass
class Attempt:
    """What one run of the device script said and how it ended."""

    rc: int = 0
    remote_rc: int | None = None  # edgekit's status, as the script reported it ("exit N")
    started: float | None = None  # when the bench began and ended (here, as the lines came)
    ended: float | None = None
    received: float | None = None  # when the files sent were in the cache
    missing: list[str] = field(default_factory=list)  # DIGEST/NAME the cache lacks
    facts: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # no-edgekit, or docker's: missing, no-image, no-daemon
    out: bytes = b""  # the result file
    tail: list[str] = field(default_factory=list)  # the last lines that were not protocol


@dataclass
class Job:
    """What every host runs: the files (staged by digest), the options, where results go."""

    models: list[device.Staged]
    staged: list[device.Staged]  # the models and the --data file or folder, if local
    options: list[str]
    out_dir: Path
    printer: Printer
    hosts_file: str | None = None


def stage(paths: Sequence[Path]) -> list[device.Staged]:
    staged = []
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"{p}: no such file" if not p.exists() else f"{p} is not a file")
        if "\n" in p.name or "/" in p.name:
            raise ConfigError(f"{p}: a file name with a line break cannot be sent")
        staged.append(device.Staged(str(p.resolve()), _digest(p), p.name))
    return staged


class HostWorker:
    """Runs one host: the device script (which says what it lacks), the files it lacks, the script
    again; the result back. `stop` may be called from another thread."""

    def __init__(self, run: HostRun, job: Job) -> None:
        self.run = run
        self.job = job
        self.transport = Transport(run.host)
        self.proc: Any = None
        self.stopping = False
        self.finished = False
        self.run_id = uuid.uuid4().hex[:12]
        self.stream = True  # --stream-rows (an edgekit before it refuses the option: run again without)
        self._result: bytes | None = None

    def say(self, text: str) -> None:
        self.job.printer(self.run.host.name, text)

    def execute(self) -> None:
        t0 = time.perf_counter()
        try:
            self._bench()
        except _Stopped:
            self.run.status = "interrupted"
            self.run.reason = self.run.reason or "interrupted before it began"
        except _Failed as e:
            self.run.status, self.run.reason = "failed", str(e)
        except Exception as e:  # a bug or an OS error: this host's row says so, the others go on
            self.run.status, self.run.reason = "failed", f"{type(e).__name__}: {first_line(e)}"
        finally:
            self.run.seconds["total"] = time.perf_counter() - t0
            try:
                self._save()
            except (EdgekitError, OSError) as e:
                self.run.notes.append(f"could not save its result: {first_line(e)}")
            self.finished = True

    def _bench(self) -> None:
        send: list[device.Staged] = []
        while True:
            if self.stopping:
                raise _Stopped
            t0 = time.perf_counter()
            args = device.bench_args(self.job.models, self.job.options, self.stream)
            script = device.run_script(self.run.host, self.job.staged, args, self.run_id, send)
            a = self._attempt(script, send)
            if a.missing and not send and a.received is None:
                send = [s for s in self.job.staged if s.rel in a.missing]
                self.run.seconds["check"] = time.perf_counter() - t0
                size = sum(Path(s.local).stat().st_size for s in send)
                self.say(f"sending {len(send)} file(s), {size / 1e6:.2f} MB, to its cache")
                continue
            if self.stream and a.remote_rc == 2 and any("--stream-rows" in ln for ln in a.tail):
                self.stream, send = False, []  # an edgekit before this option: rows come with the file only
                continue
            self.run.seconds["run"] = time.perf_counter() - t0
            if a.received is not None:
                self.run.seconds["send"] = a.received - t0
            if a.started is not None and a.ended is not None:
                self.run.seconds["bench"] = a.ended - a.started
            self.run.files_cached = len(self.job.staged) - self.run.files_sent
            self._outcome(a)
            return

    def _attempt(self, script: str, send: Sequence[device.Staged] = ()) -> Attempt:
        """Run the device script once (the files `send` first on its stdin, as a tar stream), streaming
        its progress here and collecting its rows."""
        run, a = self.run, Attempt()
        proc = self.proc = self.transport.popen(script)
        if self.stopping:  # a stop that came while it started: it ends as soon as it reads its input
            self.stop()
        out = bytearray()
        reader = _reader(proc.stdout, out)
        feeder = None
        if send:
            feeder = threading.Thread(target=self._feed, args=(proc.stdin, send), daemon=True)
            feeder.start()
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip("\r\n")
            parsed = protocol.parse(line)
            if parsed is None:
                if line.startswith("saved ") and "/runs/" in line:
                    continue  # the device's own path: this side saves and says where
                a.tail = [*a.tail[-20:], line]
                self.say(line)
            elif parsed[0] == "host":
                run.machine = parsed[1]
            elif parsed[0] == "row":
                with contextlib.suppress(TypeError):  # a row this edgekit cannot read: the file says
                    run.rows.append(BenchRow.from_dict(parsed[1]))
            else:
                self._wrapper_line(parsed[1], a)
        a.rc = proc.wait()
        reader.join()
        if feeder is not None:
            feeder.join()
        self.proc = None
        a.out = bytes(out)
        if a.received is not None:
            self.run.files_sent = len(send)
        return a

    def _feed(self, stdin: IO[bytes], send: Sequence[device.Staged]) -> None:
        """The files, as one tar stream; stdin stays open after it (the run's lifeline)."""
        sink = _Counting(stdin)
        try:
            with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[arg-type]
                for s in send:
                    info = tar.gettarinfo(s.local, arcname=s.rel)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o644
                    with open(s.local, "rb") as f:
                        tar.addfile(info, f)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):  # the device or a stop ended it: its status says
            pass
        finally:
            self.run.bytes_sent += sink.count

    def _wrapper_line(self, text: str, a: Attempt) -> None:
        word, _, rest = text.partition(" ")
        if word == "wait":
            self.say(f"another edgekit bench holds this device (pid {rest}): waiting for it to end")
        elif word == "received":
            a.received = time.perf_counter()
        elif word == "start":
            a.started = time.perf_counter()
        elif word == "exit":
            a.ended, a.remote_rc = time.perf_counter(), int(rest)
        elif word == "missing":
            a.missing.append(rest)
        elif word == "fact":
            key, _, value = rest.partition("=")
            a.facts[key] = value
        elif word in ("no-edgekit", "docker"):
            a.problem = text
        elif word == "error":
            a.tail.append(rest)

    def _outcome(self, a: Attempt) -> None:
        run, host = self.run, self.run.host
        kept = f" ({len(run.rows)} row(s) finished before it are kept)" if run.rows else ""
        if self.stopping:
            run.reason = f"interrupted{kept}"
            raise _Stopped
        if a.facts:
            run.facts = a.facts
        where = "here" if host.kind != "ssh" else f"on {host.name}"
        if a.problem == "docker missing":
            raise _Failed(f"docker is not installed {where} (Debian: `sudo apt install docker.io`)")
        if a.problem == "docker no-daemon":
            raise _Failed(f"docker {where} cannot reach its daemon: start it (`sudo systemctl start docker`)")
        if a.problem == "docker no-image":
            raise _Failed(
                f"there is no image {host.docker} {where}: build it (docker/README.md) or `docker pull {host.docker}`"
            )
        if a.problem == "no-edgekit":
            command = " ".join(host.edgekit)
            place = "there" if "/" in host.edgekit[0] else "on the PATH of a non-interactive session there"
            advice = device.install_advice(a.facts, host, self.job.hosts_file or "edgekit-hosts.toml")
            raise _Failed(f"no `{command}` {place}: {advice}")
        if a.missing:
            raise _Failed(
                f"the files sent are not in its cache ({', '.join(a.missing)}): is its workdir writable?"
            )
        if a.remote_rc is None and a.started is None and a.rc in (70, 71, 72, 73):
            raise _Failed(f"could not store the files in its cache: {_last(a.tail)}")
        if a.remote_rc is None:  # the script never finished: the connection or the script's shell ended
            if self.transport.is_ssh and a.rc == 255:
                if a.started is None:
                    raise _Failed(self.transport.failure("\n".join(a.tail)))
                raise _Failed(f"lost the connection to {host.name} mid-run: {_last(a.tail)}{kept}")
            raise _Failed(f"the script there ended with status {a.rc}: {_last(a.tail)}{kept}")
        if a.remote_rc == 0 and a.out.strip():
            self._result = a.out
            run.status = "measured"
            return
        killed = _signal_text(a.remote_rc)
        if killed:
            hint = f" ({OOM_HINT})" if "SIGKILL" in killed else ""
            raise _Failed(f"its edgekit was {killed} mid-run{hint}{kept}")
        if run.rows and all(r.error for r in run.rows):
            run.status = "failed"
            run.reason = f"no row could be measured there: {annotate(run.rows[0])}"
            return
        errors = [ln[len("error: ") :] for ln in a.tail if ln.startswith("error: ")]
        why = errors[-1] if errors else _last(a.tail)
        raise _Failed(f"its edgekit ended with status {a.remote_rc}: {why}{kept}")

    # -- saving ------------------------------------------------------------------------------------

    def _save(self) -> None:
        """The device's result file beside the local results (the run's record of where it came
        from added); for a run that ended early, a result file of the rows it finished."""
        from edgekit import __version__
        from edgekit.fileio import write_text

        run = self.run
        run.version = str(run.machine.get("edgekit")) if run.machine.get("edgekit") else None
        on = {"name": run.host.name, "target": run.host.target}
        path = default_result_path({"hostname": run.host.name}, self.job.out_dir)
        if self._result is not None:
            try:
                doc = json.loads(self._result)
            except ValueError:
                run.status, run.reason = "failed", "its result file did not come back whole (not JSON)"
                return
            if isinstance(doc, dict):
                doc["on"] = on
                machine = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
                run.version = str(machine.get("edgekit") or run.version)
            write_text(path, json.dumps(doc, indent=1))
            try:
                loaded = load_result(path)
            except DataError as e:
                run.status, run.rows = "failed", []
                run.reason = (
                    f"edgekit {run.version} there wrote a result this edgekit ({__version__}) does not read: "
                    f"{e}; kept as {path}"
                )
                return
            run.rows, run.schema_version, run.path = loaded.rows, loaded.schema_version, path
            run.machine = loaded.host or run.machine
        elif run.rows:
            extra = {"interrupted": run.status == "interrupted", "ended_early": run.reason}
            host = run.machine or {"hostname": run.host.name}
            write_text(path, json.dumps(result_doc(run.rows, host, on=on, **extra), indent=1))
            run.path = path
        if run.version and run.version != __version__:
            run.notes.append(
                f"edgekit {run.version} there, {__version__} here: the rows are compared as long as its result "
                "schema is one this edgekit reads; `pip install -U edgekit` on both sides to match"
            )

    def stop(self) -> None:
        """End the run: its connection's input is closed, on which the device script stops the bench's
        whole process group (a transfer is simply cut: its files are moved into place only whole)."""
        self.stopping = True
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()

    def kill(self) -> None:
        """What did not stop when asked: its local process ends (and with it the connection)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


def _last(lines: Sequence[str] | str) -> str:
    if isinstance(lines, str):
        lines = lines.splitlines()
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), "no message")
