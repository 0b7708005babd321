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
    from edgekit.benchmark.runner import Benchmark, BenchSettings, progress_printer
    from edgekit.errors import ConfigError, DataError
    from edgekit.fileio import check_writable
    from edgekit.runtime.tasks.tensor import parse_shapes

    settings = BenchSettings(
        backends=tuple(_list(backend)) or ("auto",),
        devices=tuple(_list(device)) or ("auto",),
        threads=tuple(_ints(threads, "--threads")) or (None,),
        batches=tuple(_ints(batch, "--batch")) or (1,),
        runs=runs,
        max_time=max_time,
        warmup=warmup,
        data=data,
        eval_samples=eval_samples,
        shapes=parse_shapes(shape),
        profile=profile,
        seed=seed,
        baseline=baseline,
    )
    if on:  # each host runs this same bench by its own edgekit: edgekit/remote
        from edgekit.remote.fleet import bench_on

        bench_on(on, models, settings, hosts_file=hosts, ssh_config=ssh_config, out=out, no_save=no_save,
                 csv=csv_out, plot=plot, markdown=markdown, json_out=json_out, echo=typer.echo)  # fmt: skip
        return
    if plot or markdown or hosts or ssh_config:
        raise ConfigError(
            "--plot, --markdown, --hosts and --ssh-config go with --on (one host: `edgekit compare`)"
        )
    benchmark = Benchmark(models, settings)
    # where the results go is checked before minutes of measuring, not after
    save_to = None if no_save else (out or Path("bench-results") / "result.json")
    for target in (save_to, csv_out):
        if target is not None:
            check_writable(target, force=True)
    progress = progress_printer()
    if stream_rows:  # for the machine that started this bench over `--on` (edgekit/remote/protocol.py)
        from edgekit.remote.protocol import stream_rows as streaming

        progress = streaming(progress)
    report = benchmark.run(progress=progress)
    doc = report.doc()
    if json_out:
        typer.echo(json.dumps(doc, indent=1))
    else:
        typer.echo(report.table())
        typer.echo("")
        typer.echo("\n".join(report.verdict))
    if report.interrupted:
        typer.secho(
            f"interrupted: {len(report.rows)} of {report.planned} rows were measured; they are kept",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if report.rows and all(r.error for r in report.rows):  # a result with no figure is not worth a file
        raise DataError(f"nothing could be measured: {report.rows[0].error}")
    if report.rows and not no_save:
        from edgekit.benchmark.results import default_result_path

        path = report.save(out or default_result_path(report.host))
        typer.echo(f"saved {path}", err=True)
    if csv_out and report.rows:
        report.save_csv(csv_out)
        typer.echo(f"saved {csv_out}", err=True)
    if report.interrupted:
        raise typer.Exit(130)
