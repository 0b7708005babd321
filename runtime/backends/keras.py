"""Keras files, for comparison in `bench` and for `run` on a host. TensorFlow is imported only when
such a file is opened, so the runtime itself stays free of it."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.card import MAX_CARD_BYTES, ModelCard
from edgekit.deps import installed
from edgekit.errors import ModelFileError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo

INSTALL = "pip install 'edgekit[train]'"


def card_path_for(model_path: Path) -> Path:
    """Where the card of a Keras model lives: `card.json` beside `model.keras` (what `train` writes),
    or `<stem>.card.json` for a model saved under another name."""
    named = model_path.with_name(f"{model_path.stem}.card.json")
    return named if named.exists() else model_path.with_name("card.json")


CARD_ENTRY = "edgekit_card.json"  # the card inside a .keras file (a zip); Keras ignores the entry


def read_keras_card(path: Path) -> ModelCard | None:
    """The card beside the model (it wins: a user may have edited it), else the one inside it."""
    card = card_path_for(Path(path))
    if card.exists():
        return ModelCard.load(card)
    return embedded_keras_card(Path(path))


def embedded_keras_card(path: Path) -> ModelCard | None:
    """The card `embed_keras_card` put inside a .keras file, so that the one file is enough."""
    if path.suffix.lower() != ".keras" or not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(CARD_ENTRY)
            if info.file_size > MAX_CARD_BYTES:
                raise ModelFileError(
                    f"{path}'s {CARD_ENTRY} is {info.file_size / 2**20:.0f} MB: a model card holds at "
                    f"most {MAX_CARD_BYTES // 2**20} MB"
                )
            text = z.read(info)
    except KeyError:
        return None  # a .keras file from elsewhere: no card
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ModelFileError(f"{path} is not a Keras model edgekit can load: {first_line(e)}") from None
    return ModelCard.from_json(text, source=f"{path} ({CARD_ENTRY})")


def embed_keras_card(path: Path, card: ModelCard) -> bool:
    """Put `card` inside the .keras file at `path` (an entry of its zip, replacing an earlier one),
    atomically: the card then travels with the file, as it does in .tflite and .onnx files. An .h5
    file is left as it is (False): its card stays beside it."""
    from edgekit.fileio import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".keras" or not zipfile.is_zipfile(path):
        return False
    with (
        atomic_path(path, keep_suffix=True) as tmp,  # the zip is closed before the rename
        zipfile.ZipFile(path) as src,
        zipfile.ZipFile(tmp, "w") as dst,
    ):
        for info in src.infolist():
            if info.filename != CARD_ENTRY:
                with src.open(info) as fin, dst.open(info, "w") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
        dst.writestr(CARD_ENTRY, card.to_json(indent=2), compress_type=zipfile.ZIP_DEFLATED)
    return True


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
