"""Keras files, for comparison in `bench` and for `run` on a host. TensorFlow is imported only when
such a file is opened, so the runtime itself stays free of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import installed
from edgekit.errors import ModelFileError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo

INSTALL = "pip install 'edgekit[train]'"


def card_path_for(model_path: Path) -> Path:
    """Where the card of a Keras model lives: `card.json` beside `model.keras` (what `train` writes),
    or `<stem>.card.json` for a model saved under another name."""
    named = model_path.with_name(f"{model_path.stem}.card.json")
    return named if named.exists() else model_path.with_name("card.json")


def read_keras_card(path: Path) -> ModelCard | None:
    card = card_path_for(Path(path))
    return ModelCard.load(card) if card.exists() else None


def load_keras_model(path: Path, *, safe_mode: bool = True):
    """Load a .keras or .h5 model; Lambda layers are refused unless safe_mode is off."""
    from edgekit.tfutil import import_tf  # imports TensorFlow only now, and quietly

    _, keras = import_tf()
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        return keras.saving.load_model(path, safe_mode=safe_mode, compile=False)
    except ValueError as e:
        if "Lambda" in str(e) or "safe_mode" in str(e):
            raise ModelFileError(
                f"{path} contains a Lambda layer, which runs arbitrary code: pass --unsafe if you trust it"
            ) from None
        raise ModelFileError(f"{path} is not a Keras model edgekit can load: {first_line(e)}") from None
    except Exception as e:  # zip, h5 and json errors from a damaged file
        raise ModelFileError(f"{path} is not a Keras model edgekit can load: {first_line(e)}") from None


class KerasSession(Session):
    backend = "keras"

    def __init__(self, path: Path, options: SessionOptions) -> None:
        super().__init__(path, read_keras_card(path))
        self.model = load_keras_model(path)
        self.inputs = [
            TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype or "float32")) for t in self.model.inputs
        ]
        self.outputs = [
            TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype or "float32")) for t in self.model.outputs
        ]

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        # model(x), as a user of Keras calls it, is what `bench` compares against
        out = self.model(feeds[0] if len(feeds) == 1 else list(feeds), training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o) for o in outs]

    def close(self) -> None:
        self.model = None


BACKENDS.add(
        Backend(
        name="keras",
        suffixes=(".keras", ".h5"),
        module="keras",
        install=INSTALL,
        open=lambda path, options: KerasSession(path, options),
        read_card=read_keras_card,
        note="host only: imports TensorFlow",
        extra_check=lambda: installed("tensorflow"),
    ),
)
