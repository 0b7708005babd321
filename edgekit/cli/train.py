from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.cli.core import Interrupted, app, command
from edgekit.errors import ConfigError


def parse_hparams(pairs: list[str]) -> dict[str, Any]:
    """`--set filters=16 --set dropout=0.2` -> {"filters": 16, "dropout": 0.2} (values read as JSON
    where they parse, else kept as text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes NAME=VALUE, not {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@app.command()
@command
def train(
    recipe: Annotated[str, typer.Argument(help="A recipe name, e.g. mnist-cnn (see `edgekit list`).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for model.keras, card, history, curves.")
    ] = Path("runs/{recipe}"),
    data: Annotated[
        str | None, typer.Option(help="Dataset: 'shipped', 'keras' (download), or a file/folder of your own.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (default: the recipe's).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (default: the recipe's).")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Train on the first N training samples only.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed, for reproducible runs.")] = 0,
    hparam: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a hyper-parameter of the recipe: NAME=VALUE (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted run in --out from its last finished epoch.")
    ] = False,
    strategy: Annotated[
        str,
        typer.Option(
            help="none; mirrored (every GPU of this machine); multiworker (the cluster in TF_CONFIG)."
        ),
    ] = "none",
    save_format: Annotated[
        str, typer.Option("--format", help="keras (model.keras) or h5 (legacy model.h5).")
    ] = "keras",
    force: Annotated[bool, typer.Option(help="Overwrite files from an earlier run.")] = False,
    target: Annotated[
        str | None, typer.Option(help="Tables: the column to predict (--data file.csv --target price).")
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Tables: the columns to predict from, comma-separated (default: all).")
    ] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Tables: columns to one-hot as categories, comma-separated.")
    ] = None,
    missing: Annotated[
        str | None,
        typer.Option(
            help="Tables: missing values: drop (the row), mean, median, zero, interpolate (a series)."
        ),
    ] = None,
    outliers: Annotated[
        str | None, typer.Option(help="Tables: drop training rows that are outliers by iqr or zscore.")
    ] = None,
    value_range: Annotated[
        list[str] | None,
        typer.Option("--range", help="Tables: drop rows outside COLUMN=LOW..HIGH (repeatable)."),
    ] = None,
    scale: Annotated[str | None, typer.Option(help="Tables: standard (default), minmax or none.")] = None,
    unit: Annotated[
        list[str] | None,
        typer.Option(help="Tables: a column's unit, COLUMN=UNIT (repeatable), for the card."),
    ] = None,
    classes: Annotated[
        str, typer.Option(help="Tables: read the target as classes: auto, yes or no (a number).")
    ] = "auto",
) -> None:
    """Train a documented model; writes model.keras, card.json, history.json and curves.png."""
    from edgekit.models.resume import STATE_FILE
    from edgekit.models.train import TrainConfig
    from edgekit.models.train import train as run_training

    table = (target, features, categorical, missing, outliers, value_range, scale, unit)
    if any(table) or classes != "auto":
        data = _table_data(
            data, target, features, categorical, missing, outliers, value_range, scale, unit, classes
        )
    config = TrainConfig(  # checks every option (an unknown recipe first) before any data is read
        recipe,
        Path(str(out).format(recipe=recipe)),
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        limit=limit,
        seed=seed,
        force=force,
        hparams=parse_hparams(hparam or []),
        resume=resume,
        strategy=strategy,
        save_format=save_format,
    )
    try:
        result = run_training(config)
    except KeyboardInterrupt:
        raise Interrupted(resume_hint(config.out_dir, config.backup / STATE_FILE)) from None
    m = result.card.metrics
    headline = config.recipe_entry.for_data(result.dataset).evaluation.metric  # a table's may regress
    value = m.get(f"heldout_{headline}")
    shown = f"{value:.4f}" if isinstance(value, float) else "n/a"
    typer.echo(
        f"{recipe}: held-out {headline} {shown} on {len(result.dataset.heldout)} samples "
        f"after {m['epochs']} epochs ({result.seconds:.1f}s)"
    )
    out = config.out_dir
    written = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    typer.echo(f"wrote {', '.join(str(out / n) for n in written)}")


def resume_hint(out: Path, state: Path) -> str:
    """After Ctrl-C: how to go on (the run is kept at its last finished epoch), or that nothing was
    kept (stopped before the first epoch ended)."""
    if not state.is_file():
        return f"stopped before the first epoch finished: nothing in {out} to resume"
    try:
        epoch = f" (epoch {json.loads(state.read_text())['epoch']})"
    except (OSError, ValueError, KeyError, TypeError):
        epoch = ""
    return f"{out} keeps the last finished epoch{epoch}: run the same command with --resume to go on"


def _table_data(data, target, features, categorical, missing, outliers, ranges, scale, units, classes) -> str:
    """The table options as the one `--data` text a card keeps (`file.csv?target=...`)."""
    from edgekit.runtime.cleaning import Cleaning
    from edgekit.runtime.datasets.tabular import TableSource, table_data

    def names(text: str | None) -> tuple[str, ...]:
        return tuple(n.strip() for n in (text or "").split(",") if n.strip())

    def pairs(items: list[str] | None, form: str) -> dict[str, str]:
        out = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(
                    f"{form} takes COLUMN={'LOW..HIGH' if form == '--range' else 'VALUE'}, not {item!r}"
                )
            out[key.strip()] = value.strip()
        return out

    base = TableSource.parse(data or "shipped").cleaning
    bounds = {}
    for name, text in pairs(ranges, "--range").items():
        low, sep, high = text.partition("..")
        try:
            bounds[name] = (float(low), float(high))
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--range {name}={text}: give COLUMN=LOW..HIGH, such as humidity=0..100")
    cleaning = Cleaning(
        duplicates=base.duplicates,
        missing=missing or base.missing,
        ranges=bounds or base.ranges,
        outliers=outliers or base.outliers,
        scale=scale or base.scale,
    )
    return table_data(
        data,
        target=target,
        features=names(features),
        categorical=names(categorical),
        units=pairs(units, "--unit"),
        cleaning=cleaning,
        classes=classes,
    )
