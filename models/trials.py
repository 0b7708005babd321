"""A search's trials as a record: trials.csv and trials.json (one row per trial: its settings, score
and seconds), kept current while the search runs so a killed one leaves them readable, and
scores.png (each hyper-parameter against the score) once it is over."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from edgekit.fileio import write_text

TRIALS_CSV, TRIALS_JSON, SCORES_PNG = "trials.csv", "trials.json", "scores.png"


def trial_rows(tuner, names: list[str], objective: str) -> list[dict[str, Any]]:
    """Every trial so far, in order: its number, status, settings (of the hyper-parameters
    `names`), score (`objective`) and seconds."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda kv: int(kv[0])):
        values = trial.hyperparameters.values
        row: dict[str, Any] = {"trial": int(trial_id) + 1, "status": str(trial.status)}
        row.update({name: values.get(name) for name in names})
        if "tuner/epochs" in values:
            row["epochs"] = values["tuner/epochs"]
        row[objective] = None if trial.score is None else float(trial.score)
        seconds = trial.metrics.get_best_value("seconds") if trial.metrics.exists("seconds") else None
        row["seconds"] = None if seconds is None else round(float(seconds), 2)
        rows.append(row)
    return rows


def write_trials(
    out: Path, rows: list[dict[str, Any]], names: list[str], objective: str, title: str, plot: bool = True
) -> None:
    """trials.csv and trials.json (one row per trial) in `out`, and scores.png (the score against
    each hyper-parameter) once the search is over."""
    write_text(out / TRIALS_JSON, json.dumps(rows, indent=2))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / TRIALS_CSV, text.getvalue())
    if plot:
        plot_scores(rows, names, objective, out / SCORES_PNG, title)


def plot_scores(rows: list[dict[str, Any]], names: list[str], objective: str, path: Path, title: str) -> Path:
    """The scores' figure (`scores_figure`) as a PNG."""
    import matplotlib.pyplot as plt

    from edgekit.fileio import atomic_path

    fig = scores_figure(rows, names, objective, title)
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def scores_figure(rows: list[dict[str, Any]], names: list[str], objective: str, title: str):
    """One panel per hyper-parameter: every finished trial's score at its value (values as
    categories, in the order searched), the best trial ringed and named in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get(objective) is not None]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.2 * max(1, len(names)), 3.2), squeeze=False)
    best = max(done, key=lambda r: r[objective]) if done and not objective.endswith("loss") else None
    if done and objective.endswith("loss"):
        best = min(done, key=lambda r: r[objective])
    for ax, name in zip(axes[0], names, strict=False):
        values = list(dict.fromkeys(str(r[name]) for r in done))
        xs = [values.index(str(r[name])) for r in done]
        ax.scatter(xs, [r[objective] for r in done], alpha=0.7, label="a trial")
        if best is not None:
            ax.scatter(
                [values.index(str(best[name]))],
                [best[objective]],
                s=120,
                facecolors="none",
                edgecolors="red",
                label=f"best: trial {best['trial']}",
            )
            ax.legend(fontsize=7, loc="best")
        ax.set_xticks(range(len(values)), values)
        ax.set_xlabel(name)
        ax.set_ylabel(objective)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {len(done)} trials")
    fig.tight_layout()
    return fig
