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

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.benchmark.plan import Planned, failed_row, plan_rows
from edgekit.benchmark.results import (
    BenchResult,
    BenchRow,
)
from edgekit.benchmark.runner import BenchSettings
from edgekit.errors import ConfigError, DataError
from edgekit.remote import device
from edgekit.remote.hostrun import HostRun, HostWorker, Job, Printer, annotate, stage
from edgekit.remote.hosts import Host, resolve


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
    staged = stage([Path(m) for m in models])
    data = settings.data
    extra: list[device.Staged] = []
    if data and Path(data).is_file():
        extra = stage([Path(data)])
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
