"""An interrupted run, kept to be resumed: at each epoch's end the weights, the optimizer's state,
the history so far and the watching callbacks' counters go into the run's backup folder, so
`edgekit train --resume` goes on from the last finished epoch to what a run never stopped gives.

The randomness and the batch order need no saving: `Step` draws them from (seed, epoch) alone."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fileio import write_text

STATE_FILE = "state.json"  # inside the backup: the last finished epoch, and what goes with it
# the watching callbacks' counters, saved with each epoch so a resumed run stops and lowers its
# learning rate when the run never stopped would (each resets them as it starts)
CALLBACK_STATE = ("wait", "best", "best_epoch", "cooldown_counter", "stopped_epoch")


@dataclass(frozen=True)
class Resumed:
    """What an interrupted run's backup holds: the epochs done, their history, the callbacks'
    counters in order (the keeper restores them when the fit starts)."""

    epoch: int
    history: dict[str, list[float]]
    callbacks: dict[str, dict[str, Any]]  # by the callback's class name
    best_weights: list[Any] | None  # early stopping's best so far (from best.keras), if any


def epoch_backup(keras, backup: Path, seed: int, callbacks: list, resumed: Resumed | None):
    """At each epoch's end: the weights and optimizer state into `epoch-N.weights.h5`, then (one
    atomic write, after the weights are on disk) `state.json` naming that epoch, with the history
    so far and the callbacks' counters. A kill at any moment leaves a state that names a whole
    weights file of its own epoch; the randomness and the batch order are (seed, epoch)'s."""
    history = {k: list(v) for k, v in (resumed.history if resumed is not None else {}).items()}

    def begin(logs: dict | None) -> None:
        if resumed is None:
            return
        for callback in callbacks:
            for name, value in resumed.callbacks.get(type(callback).__name__, {}).items():
                setattr(callback, name, value)
            if resumed.best_weights is not None and hasattr(callback, "best_weights"):
                callback.best_weights = resumed.best_weights

    def end(epoch: int, logs: dict | None) -> None:
        for k, v in (logs or {}).items():
            history.setdefault(k, []).append(float(v))
        backup.mkdir(parents=True, exist_ok=True)
        weights = backup / f"epoch-{epoch + 1}.weights.h5"
        keeper.model.save_weights(weights, overwrite=True)
        with weights.open("rb") as f:
            os.fsync(f.fileno())
        counters = {
            type(c).__name__: {n: _plain(getattr(c, n)) for n in CALLBACK_STATE if hasattr(c, n)}
            for c in callbacks
            if any(hasattr(c, n) for n in CALLBACK_STATE)
        }
        state = {"epoch": epoch + 1, "seed": seed, "history": history, "callbacks": counters}
        write_text(backup / STATE_FILE, json.dumps(state))
        for old in backup.glob("epoch-*.weights.h5"):
            if old != weights:
                old.unlink(missing_ok=True)

    keeper = keras.callbacks.LambdaCallback(on_train_begin=begin, on_epoch_end=end)
    return keeper


def _plain(value: Any) -> Any:
    return (
        float(value)
        if isinstance(value, float | np.floating)
        else int(value)
        if isinstance(value, np.integer)
        else value
    )


def resume_state(keras, model: Any, out_dir: Path, backup: Path, best: Path, seed: int) -> Resumed:
    """Load the interrupted run in `out_dir` (its `backup` folder; `best`: its best-epoch file) at
    its last finished epoch into `model` (weights and optimizer state); refuse a backup that is
    damaged or was made with another --seed."""
    try:
        state = json.loads((backup / STATE_FILE).read_text())
        epoch, saved_seed = int(state["epoch"]), int(state["seed"])
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
        model.load_weights(backup / f"epoch-{epoch}.weights.h5")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"the interrupted run in {out_dir} cannot be resumed: its backup is damaged or "
            f"from an older edgekit ({getattr(e, 'strerror', None) or e}); pass --force to start over"
        ) from None
    if saved_seed != seed:
        raise ConfigError(
            f"the interrupted run in {out_dir} was started with --seed {saved_seed}: resume it with "
            f"--seed {saved_seed} (or pass --force to start over)"
        )
    best_weights = None
    if best.exists() and "EarlyStopping" in state["callbacks"]:
        best_weights = keras.saving.load_model(best, compile=False).get_weights()
    history = {k: [float(x) for x in v] for k, v in state["history"].items()}
    return Resumed(epoch, history, state["callbacks"], best_weights)
