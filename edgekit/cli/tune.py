from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgekit.cli.core import Interrupted, app, command


@app.command()
@command
def tune(
    recipe: Annotated[str, typer.Argument(help="A recipe name, e.g. mnist-mlp (see `edgekit list`).")],
    grid: Annotated[
        list[str] | None,
        typer.Option(
            help="Values to try: NAME=V1,V2 (repeatable; names as --set takes). Default: the recipe's ranges."
        ),
    ] = None,
    random: Annotated[
        int | None, typer.Option(min=1, help="Try N random settings of the grid instead of all.")
    ] = None,
    strategy: Annotated[str, typer.Option(help="grid (every setting), random, or hyperband.")] = "grid",
    folds: Annotated[
        int | None,
        typer.Option(
            min=2, help="Score by stratified K-fold cross-validation instead of the validation part."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="What to maximise: accuracy, macro_f1, ... or loss (default: the recipe's)."),
    ] = None,
    max_trials: Annotated[
        int, typer.Option(min=1, help="Refuse a grid of more trials than this (see --force).")
    ] = 20,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the trials, their plot and the best model.")
    ] = Path("runs/{recipe}-tune"),
    data: Annotated[
        str | None, typer.Option(help="Dataset: 'shipped', 'keras' (download), or a file/folder of your own.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs per trial (default: the recipe's).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size (default: the recipe's).")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Train on the first N training samples only.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed, for reproducible searches.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue a killed search in --out.")] = False,
    force: Annotated[
        bool, typer.Option(help="Run a grid larger than --max-trials; start over in a folder with a search.")
    ] = False,
) -> None:
    """Search a recipe's hyper-parameters (Keras Tuner) on the validation part, then train the best
    on the whole training split; writes trials.csv/json, scores.png and an exportable model."""
    from edgekit.models.trials import TRIALS_JSON
    from edgekit.models.tune import SEARCH_DIR, TuneConfig, parse_grid
    from edgekit.models.tune import tune as run_search

    config = TuneConfig(  # checks every option before any data is read
        recipe,
        Path(str(out).format(recipe=recipe)),
        grid=parse_grid(grid or []),
        strategy=strategy,
        random=random,
        folds=folds,
        metric=metric,
        max_trials=max_trials,
        force=force,
        resume=resume,
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        limit=limit,
        seed=seed,
    )
    try:
        result = run_search(config)
    except KeyboardInterrupt:
        finished = config.out_dir / TRIALS_JSON
        if not (config.out_dir / SEARCH_DIR).is_dir():
            raise Interrupted(
                f"stopped before the search began: nothing in {config.out_dir} to resume"
            ) from None
        kept = f" ({finished} lists its trials)" if finished.is_file() else ""
        raise Interrupted(
            f"{config.out_dir} keeps the search{kept}: run the same command with --resume to go on"
        ) from None
    shown = " ".join(f"{k}={v}" for k, v in result.best.items())
    m = result.final.card.metrics
    headline = config.recipe_entry.evaluation.metric
    value = m.get(f"heldout_{headline}")
    held = f"{value:.4f}" if isinstance(value, float) else "n/a"
    typer.echo(
        f"{recipe}: best {shown}  {config.objective} {result.score:.4f} over {len(result.trials)} trials "
        f"({result.seconds:.1f}s); trained on the whole training split: held-out {headline} {held}"
    )
    out = config.out_dir
    written = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    typer.echo(
        f"wrote {', '.join(str(out / n) for n in written)}; {out / SEARCH_DIR}/ (the search, for --resume)"
    )
