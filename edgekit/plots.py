"""Plots written beside a model: numpy + matplotlib (imported when a plot is drawn), no TensorFlow,
so `edgekit evaluate` draws them on a device too."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.fileio import atomic_path


def confusion_matrix(predicted: np.ndarray, actual: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j]: samples of class i predicted as j."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(actual, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def plot_confusion(matrix: np.ndarray, labels: tuple[str, ...], path: Path, title: str = "") -> Path:
    """The confusion matrix as a PNG, rows the true class, with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    side = min(12.0, 2.5 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 20:
        top = matrix.max() or 1
        for i in range(n):
            for j in range(n):
                colour = "white" if matrix[i, j] > top / 2 else "black"
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", color=colour, fontsize=8)
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title(f"{title}  accuracy {accuracy:.3f}" if title else f"accuracy {accuracy:.3f}")
    fig.tight_layout()
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def plot_curves(
    history: dict[str, list[float]], path: Path, title: str = "", val_label: str = "held-out"
) -> Path:
    """Loss and metric, training and the split Keras validated on, one panel each."""
    import matplotlib.pyplot as plt

    fig = curves_figure(history, title, val_label)
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def curves_figure(history: dict[str, list[float]], title: str = "", val_label: str = "held-out"):
    """The training curves' figure: whole-number epoch ticks (an epoch is not divisible), and the
    `val_` series named for what it is (`held-out`: the split the card's metrics are measured on,
    not a validation split that tuning looked at)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        n = len(history[name])
        epochs = range(1, n + 1)
        ax.plot(epochs, history[name], "o-", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "s--", label=val_label)
        ax.set_xlabel("epoch")
        # whole epochs, half an epoch of margin: one epoch is one tick at 1, not 0.945 to 1.050
        ax.set_xlim(0.5, n + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if n == 1:  # a single point has no curve: its value is written beside it
            for line in ax.get_lines():
                value = line.get_ydata()[0]
                ax.annotate(
                    f"{value:.4g}", (1, value), xytext=(6, 0), textcoords="offset points", va="center"
                )
            ax.set_title(f"{name} (one epoch: no curve yet)")
        else:
            ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
