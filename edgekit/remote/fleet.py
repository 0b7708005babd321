"""`edgekit bench FILES --on HOST ...`: the same benchmark on every host at once, each by its own
`edgekit bench` (the CLI and its result file are the contract), then one merged table as `edgekit
compare` prints it and which file to deploy where.

Per host, in its own thread: the device script checks edgekit and the files are there (the files its
cache lacks are sent as one tar stream, by content digest, and it runs again), runs the bench under
the device's lock with progress streamed here line by line, and sends back its result file. Hosts
fail one by one, each with its reason and remedy; Ctrl-C stops every run (its connection's input is
closed, and the device script stops the run's whole process group) and keeps each row finished
before it, here and in the saved files."""

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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from edgekit.benchmark.plan import Planned, failed_row, plan_rows
from edgekit.benchmark.results import (
    SCHEMA_VERSION,
    BenchResult,
    BenchRow,
    default_result_path,
    load_result,
    result_doc,
)
from edgekit.benchmark.runner import BenchSettings
from edgekit.errors import ConfigError, DataError, EdgekitError, first_line
from edgekit.remote import device, protocol
from edgekit.remote.hosts import Host, resolve
from edgekit.remote.transport import Transport

OOM_HINT = (
    "on a device that is most often the kernel's out-of-memory killer (`dmesg | grep -i oom` there): "
    "try a smaller --batch or file"
)


def device_options(s: BenchSettings, data: str | None) -> list[str]:
    """`s` as the options of the device's `edgekit bench` (`data`: the --data value there); every one
    given, so a device whose defaults differ measures what this one asked."""
    out = ["--backend", ",".join(s.backends), "--device", ",".join(s.devices)]
    threads = [str(t) for t in s.threads if t is not None]
    if threads:
        out += ["--threads", ",".join(threads)]
    out += ["--batch", ",".join(map(str, s.batches))]
    if s.runs is not None:
        out += ["--runs", str(s.runs)]
    out += ["--max-time", str(s.max_time), "--warmup", str(s.warmup)]
    if s.eval_samples is not None:
        out += ["--eval-samples", str(s.eval_samples)]
    if s.seed is not None:
        out += ["--seed", str(s.seed)]
    if s.baseline:
        out += ["--baseline", s.baseline]
    if s.profile:
        out.append("--profile")
    for name, dims in s.shapes.items():
        out += ["--shape", f"{name}={'x'.join(map(str, dims))}"]
    if data is not None:
        out += ["--data", data]
    return out


def plan(models: Sequence[Path], s: BenchSettings) -> list[Planned]:
    """The rows as this machine plans them (the rows a host that failed is shown with); a name no
    device would take is one sentence here, before any host is reached."""
    return plan_rows(
        [Path(m) for m in models], list(s.backends), list(s.devices), list(s.threads), list(s.batches)
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


@dataclass
class Job:
    """What every host runs: the files (staged by digest), the options, where results go."""

    models: list[device.Staged]
    staged: list[device.Staged]  # the models and the --data file or folder, if local
    options: list[str]
    out_dir: Path
    printer: Printer
    hosts_file: str | None = None


def _stage(paths: Sequence[Path]) -> list[device.Staged]:
    staged = []
    for p in paths:
        if not p.is_file():
            raise ConfigError(f"{p}: no such file" if not p.exists() else f"{p} is not a file")
        if "\n" in p.name or "/" in p.name:
            raise ConfigError(f"{p}: a file name with a line break cannot be sent")
        staged.append(device.Staged(str(p.resolve()), _digest(p), p.name))
    return staged


@dataclass
class FleetResult:
    runs: list[HostRun]
    interrupted: bool


def run_fleet(
    hosts: Sequence[Host],
    models: Sequence[Path],
    settings: BenchSettings,
    out_dir: Path,
    printer: Printer | None = None,
    hosts_file: str | None = None,
) -> FleetResult:
    """Bench `models` on every host at once; each host's rows, reason and result file. Ctrl-C stops
    them all and returns what finished, with `interrupted` set."""
    plan(models, settings)  # a bad option: one sentence before any host is reached
    staged = _stage([Path(m) for m in models])
    data = settings.data
    extra: list[device.Staged] = []
    if data and Path(data).is_file():
        extra = _stage([Path(data)])
        data = extra[0].on_device()
    elif data and Path(data).is_dir():
        raise ConfigError(
            f"--data {data} is a folder: with --on give one file (a .npz or .csv), or a dataset name, "
            "or copy the folder to each device and name it in the hosts file's workdir"
        )
    job = Job(
        staged, staged + extra, device_options(settings, data), out_dir, printer or Printer(), hosts_file
    )
    runs = [HostRun(h) for h in hosts]
    workers = [HostWorker(r, job) for r in runs]
    threads = [
        threading.Thread(target=w.execute, name=f"edgekit-{w.run.host.name}", daemon=True) for w in workers
    ]
    for t in threads:
        t.start()
    interrupted = False
    try:
        # a sleep, not a join: a join cut short by Ctrl-C can leave its thread counted as ended
        while not all(w.finished for w in workers):
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
        job.printer("edgekit", "interrupted: stopping the benchmark on every host (rows finished are kept)")
        for w in workers:
            w.stop()
        deadline = time.monotonic() + 15
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for w in workers:
            w.kill()
        for t in threads:
            t.join(5)
        for w in workers:
            if not w.finished:
                w.run.status, w.run.reason = (
                    "interrupted",
                    "did not stop within 20 s (its local process was ended)",
                )
    return FleetResult(runs, interrupted)


def placeholder_rows(run: HostRun, settings: BenchSettings, models: Sequence[Path]) -> list[BenchRow]:
    """A host with no row: each planned row failed with the host's reason, so it lines up."""
    why = run.reason or run.status
    return [failed_row(p, why) for p in plan(models, settings)]


def results_for(fleet: FleetResult, settings: BenchSettings, models: Sequence[Path]) -> list[BenchResult]:
    """One BenchResult per host for `compare.merge`, named by the host as --on named it."""
    out = []
    for run in fleet.runs:
        rows = run.rows or placeholder_rows(run, settings, models)
        host = {**run.machine, "hostname": run.host.name}
        out.append(BenchResult(run.path or Path(run.host.name), host, rows, run.schema_version))
    return out


def status_lines(fleet: FleetResult) -> list[str]:
    """One line per host (more for its failed rows): what ran, what was sent, where it is saved."""
    out = ["hosts:"]
    for run in fleet.runs:
        head = f"  {run.host.name} ({run.host.target})"
        if run.status == "measured":
            ok = sum(1 for r in run.rows if r.error is None)
            m = run.machine
            where = ", ".join(x for x in (m.get("arch"), m.get("python") and f"Python {m['python']}") if x)
            sent = (
                f"sent {run.files_sent} file(s), {run.bytes_sent / 1e6:.2f} MB"
                if run.files_sent
                else f"sent no file ({run.files_cached} already there)"
            )
            out.append(
                f"{head}: {ok} of {len(run.rows)} rows measured on edgekit {run.version} ({where}); {sent}"
            )
        elif run.status == "interrupted":
            out.append(f"{head}: {run.reason}")
        else:
            out.append(f"{head}: failed: {run.reason}")
        for r in run.rows:
            if r.error and run.status == "measured":
                out.append(f"    {r.name}: failed: {annotate(r)}")
        out += [f"    note: {n}" for n in run.notes]
    return out


def bench_on(
    targets: Sequence[str],
    models: Sequence[Path],
    settings: BenchSettings,
    *,
    hosts_file: Path | None = None,
    ssh_config: Path | None = None,
    out: Path | None = None,
    no_save: bool = False,
    csv: Path | None = None,
    plot: Path | None = None,
    markdown: bool = False,
    json_out: bool = False,
    echo: Callable[[str], None] = print,
) -> FleetResult:
    """The `--on` command: run, save each host's result, print the merged table and the advice.
    Raises KeyboardInterrupt after the report when interrupted, DataError when a host failed."""
    from edgekit.benchmark import compare
    from edgekit.fileio import temp_dir
    from edgekit.remote import advice

    if csv is not None:
        raise ConfigError("--csv is for one host; with --on, `edgekit compare --json` reads the saved files")
    if out is not None and out.suffix.lower() == ".json":
        raise ConfigError("with --on, --out names a folder: one result file per host is saved there")
    hosts = resolve(list(targets), hosts_file, ssh_config)
    from edgekit.remote.hosts import default_hosts_file

    used = hosts_file or default_hosts_file()
    out_dir = temp_dir("remote") if no_save else (out or Path("bench-results"))
    fleet = run_fleet(hosts, models, settings, out_dir, hosts_file=str(used) if used else None)
    results = results_for(fleet, settings, models)
    try:
        c = compare.merge(results, settings.baseline)
    except ConfigError as e:  # after the runs: the table still comes, against the first measured row
        c = compare.merge(results)
        print(f"note: {e}; the table is against {c.baseline}", file=sys.stderr)
    tips = advice.advise(c)
    if json_out:
        doc = {
            "hosts": [r.summary() for r in fleet.runs],
            "baseline": c.baseline,
            "rows": {
                k: {h: asdict(r) if (r := c.cells.get((h, k))) else None for h in c.hosts} for k in c.keys
            },
            "advice": advice.to_json(tips),
            "interrupted": fleet.interrupted,
        }
        echo(json.dumps(doc, indent=1))
    elif markdown:
        hosts_md = "\n".join(f"- {ln.strip()}" if ln.startswith("  ") else ln for ln in status_lines(fleet))
        echo(compare.markdown(c) + "\n\n" + advice.markdown(tips) + "\n\n" + hosts_md)
    else:
        echo(
            compare.text_table(c)
            + "\n\n"
            + "\n".join(advice.lines(tips))
            + "\n\n"
            + "\n".join(status_lines(fleet))
        )
    if not no_save:
        for run in fleet.runs:
            if run.path:
                print(f"saved {run.path}", file=sys.stderr)
    if plot and any(r.rows for r in fleet.runs):
        compare.plot(c, plot)
        print(f"saved {plot}", file=sys.stderr)
    if fleet.interrupted:
        raise KeyboardInterrupt
    failed = [r for r in fleet.runs if r.status != "measured"]
    if failed:
        names = ", ".join(r.host.name for r in failed)
        raise DataError(
            f"{len(failed)} of {len(fleet.runs)} host(s) failed ({names}): their reasons are above"
        )
    return fleet
