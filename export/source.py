"""The model export converts, opened once and handed from planning to every target: its file (read
once: kind, card, layers' config), the Keras model (loaded on first need), the card that describes
it, and, per `--data`, the samples it is calibrated and validated on with Keras's own outputs for
them. `--to all` reads the card once, loads the model once and runs Keras over the held-out samples
once, whatever the number of targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ConfigError
from edgekit.export.data import EvalData, eval_data
from edgekit.export.describe import CardHints, card_for
from edgekit.runtime.features import card_inputs
from edgekit.runtime.files import ModelFile


def keras_outputs(model: Any, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    """The model's outputs, called eagerly as a Keras user calls it (one array per output)."""
    parts: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch):
        out = model(x[i : i + batch], training=False)
        parts.append([np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


class Samples:
    """What one `--data` gives a model: its card (the source's, or made from the hints with the data's
    class names), the raw samples, and the Keras model's inputs and outputs for them."""

    def __init__(self, source: ExportSource, card: ModelCard, data: EvalData) -> None:
        self.source = source
        self.card = card
        self.data = data
        self._reference: list[np.ndarray] | None = None
        self._calib: np.ndarray | None = None

    @property
    def reference(self) -> list[np.ndarray]:
        """Keras's outputs on the held-out samples (what every artifact is compared with)."""
        if self._reference is None:
            model = self.source.model
            data = self.data
            what = "held-out samples" if data.labelled else "inputs"
            self.source.say(
                f"running Keras on {len(data.heldout)} {what}: the outputs each file is checked against"
            )
            self._reference = keras_outputs(model, card_inputs(self.card, self.data.heldout))
        return self._reference

    @property
    def calibration(self) -> np.ndarray | None:
        """The model inputs int8 is calibrated on (None: the data has none)."""
        if self._calib is None and self.data.calib is not None:
            self._calib = card_inputs(self.card, self.data.calib)
        return self._calib


class ExportSource:
    """A model export reads from: a `.keras`/`.h5` file or a SavedModel folder, opened once."""

    def __init__(
        self,
        file: ModelFile,
        *,
        unsafe: bool = False,
        model: Any = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.file = file
        self.unsafe = unsafe
        self._model = model
        self._samples: dict[tuple[Any, ...], Samples] = {}
        self.progress = progress  # hears of each long step (loading, Keras's outputs, each target)

    @classmethod
    def open(
        cls,
        path: str | Path | ModelFile | ExportSource,
        *,
        unsafe: bool = False,
        model: Any = None,
        progress: Callable[[str], None] | None = None,
    ) -> ExportSource:
        """The model at `path`; one sentence when it is not one export converts."""
        if isinstance(path, ExportSource):
            if progress is not None:
                path.progress = progress
            return path
        file = ModelFile.open(path) if isinstance(path, ModelFile) or Path(path).exists() else None
        if file is None:
            from edgekit.errors import ModelFileError

            raise ModelFileError(f"model file {path} does not exist")
        if not hasattr(file.kind, "load"):
            what = f"a {file.kind.name} file" if file.kind.whole_file else f"a {file.kind.name} model"
            raise ConfigError(
                f"{file.name} is {what}: export takes a .keras or .h5 file, or a TensorFlow SavedModel folder"
            )
        source = cls(file, unsafe=unsafe, model=model, progress=progress)
        _ = source.config  # a damaged model file is said first, before anything about its card
        return source

    @property
    def path(self) -> Path:
        return self.file.path

    def say(self, message: str) -> None:
        """Tell `progress` what long step begins (a conversion can be silent for many seconds)."""
        if self.progress is not None:
            self.progress(message)

    @property
    def card(self) -> ModelCard | None:
        """The card the model came with (beside it or inside it), read once; None: none."""
        return self.file.card

    @property
    def config(self) -> dict[str, Any] | None:
        """The Keras config, read without TensorFlow (None for a SavedModel)."""
        return self.file.kind.config(self.file)

    @property
    def model(self) -> Any:
        """The Keras model, loaded once (imports TensorFlow)."""
        if self._model is None:
            self.say(f"loading {self.file.name} (TensorFlow and the model)")
            self._model = self.file.kind.load(self.file, safe_mode=not self.unsafe)
        return self._model

    def samples(self, hints: CardHints | None, data: str | None, calib_samples: int) -> Samples:
        """The card and samples for this `--data` and these hints, made once per combination."""
        hints = hints or CardHints()
        key = (hints, data, calib_samples)
        if key not in self._samples:
            card = self.card
            if card is None or hints.given():
                # a card made from the flags; image-folder data may name the classes
                base = card_for(self.model, self.path, hints, card=card)
                found = eval_data(base, data, calib_samples)
                card = card_for(self.model, self.path, hints, card=card, labels=found.labels)
            else:
                found = eval_data(card, data, calib_samples)
            self._samples[key] = Samples(self, card, found)
        return self._samples[key]
