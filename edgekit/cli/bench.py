from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import app, command


def _list(values: list[str] | None) -> list[str]:
    """`--backend a,b --backend c` -> [a, b, c]."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def _ints(values: list[str] | None, option: str) -> list[int]:
    try:
        return [int(v) for v in _list(values)]
    except ValueError:
        raise typer.BadParameter(f"{option} takes whole numbers such as 1,2,4") from None


@app.command()
@command
def bench(
    models: Annotated[
        list[Path], typer.Argument(help="Model files (.tflite, .onnx, .keras); any file, card or not.")
    ],
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Backends, comma-separated, or all (every installed one that opens the file)."),
    ] = None,
    device: Annotated[
        list[str] | None, typer.Option(help="Devices, comma-separated: cpu, cuda, tensorrt.")
    ] = None,
    threads: Annotated[list[str] | None, typer.Option(help="Thread counts, comma-separated: 1,2,4.")] = None,
    batch: Annotated[list[str] | None, typer.Option(help="Batch sizes, comma-separated: 1,8.")] = None,
    runs: Annotated[int | None, typer.Option(help="Exactly this many timed runs per row.")] = None,
    max_time: Annotated[
        float,
        typer.Option(
            help="Seconds of timed runs per row at most (it stops sooner once the median is known to ±2.5%)."
        ),
    ] = 5.0,
    warmup: Annotated[int, typer.Option(help="Untimed runs first (and at least 0.2 s).")] = 10,
    baseline: Annotated[
        str | None, typer.Option(help="The row speed-ups are against: its number or part of its name.")
    ] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Per-operator times from the backend's profiler.")
    ] = False,
    shape: Annotated[
        list[str] | None,
        typer.Option(help="A dynamic input's shape, name=1x3x224x224 (models with no card)."),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Held-out data for the metric (default: the card's).")
    ] = None,
    eval_samples: Annotated[int, typer.Option(help="Held-out samples for the metric.")] = 1000,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the rows as CSV.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to save the result (default: bench-results/HOST-TIME.json).")
    ] = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not save the result file.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of the random order the rows run in (the table keeps yours).")
    ] = 0,
    on: Annotated[
        list[str] | None,
        typer.Option(
            help="Bench on this host instead, by its own edgekit (repeat for several, run at once): local, "
            "ssh://user@host:port (user, port optional), docker://IMAGE, or a name in the hosts file; the "
            "results merged."
        ),
    ] = None,
    hosts: Annotated[
        Path | None,
        typer.Option(
            help="The hosts file for --on names (default: ./edgekit-hosts.toml, ~/.config/edgekit/hosts.toml)."
        ),
    ] = None,
    ssh_config: Annotated[Path | None, typer.Option(help="The ssh config file for --on (ssh -F).")] = None,
    plot: Annotated[Path | None, typer.Option(help="With --on: draw the comparison as a PNG.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="With --on: Markdown tables.")] = False,
    stream_rows: Annotated[bool, typer.Option("--stream-rows", hidden=True)] = False,
) -> None:
    """Latency (p50/p90/p99 with the median's interval), load and first-inference time, throughput,
    peak memory, size and the task's metric, one row per file x backend x device x threads x batch,
    each in its own process, in a random order; each row against the baseline with a Mann-Whitney
    test; a verdict for this host under the table."""
    from edgekit.bench_table import (
        bench_models,
        default_baseline,
        default_result_path,
        find_row,
        machine,
        mark_against,
        progress_printer,
        result_doc,
        table,
        to_csv,
        verdict,
    )
    from edgekit.errors import ConfigError, DataError
    from edgekit.fileio import write_text
    from edgekit.remote import protocol
    from edgekit.runtime.tasks.tensor import parse_shapes

    if runs is not None and runs < 1:
        raise typer.BadParameter("--runs must be at least 1")
    if on:  # each host runs this same command; see edgekit/remote
        from edgekit.remote.fleet import BenchSettings, bench_on

        settings = BenchSettings(tuple(backend or ()), tuple(device or ()), tuple(threads or ()),
                                 tuple(batch or ()), runs, max_time, warmup, baseline, profile,
                                 tuple(shape or ()), data, eval_samples, seed)  # fmt: skip
        bench_on(on, models, settings, hosts_file=hosts, ssh_config=ssh_config, out=out, no_save=no_save,
                 csv=csv_out, plot=plot, markdown=markdown, json_out=json_out, echo=typer.echo)  # fmt: skip
        return
    if plot or markdown or hosts or ssh_config:
        raise ConfigError(
            "--plot, --markdown, --hosts and --ssh-config go with --on (one host: `edgekit compare`)"
        )
    host = machine()
    rows = bench_models(
        models,
        _list(backend) or ["auto"],
        devices=_list(device) or ["auto"],
        threads=_ints(threads, "--threads") or [None],
        batches=_ints(batch, "--batch") or [1],
        runs=runs,
        max_time=max_time,
        warmup=warmup,
        data=data,
        eval_samples=eval_samples,
        shapes=parse_shapes(shape),
        profile=profile,
        progress=protocol.stream_rows(progress_printer(), host) if stream_rows else progress_printer(),
        seed=seed,
    )
    base = find_row(rows, baseline) if baseline else default_baseline(rows)
    mark_against(rows, base)
    doc = result_doc(rows, host, baseline=base.name if base else None, seed=seed, verdict=verdict(rows, host))
    if json_out:
        typer.echo(json.dumps(doc, indent=1))
    else:
        typer.echo(table(rows, base))
        typer.echo("")
        typer.echo("\n".join(doc["verdict"]))
    if all(r.error for r in rows):  # a result with no figure is not worth a file
        raise DataError(f"nothing could be measured: {rows[0].error}" if rows else "nothing to measure")
    if not no_save:
        path = out or default_result_path(host)
        write_text(path, json.dumps(doc, indent=1))
        typer.echo(f"saved {path}", err=True)
    if csv_out:
        write_text(csv_out, to_csv(rows))
        typer.echo(f"saved {csv_out}", err=True)
