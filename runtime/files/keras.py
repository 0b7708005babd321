"""Keras models: `.keras` and `.h5` files and TensorFlow SavedModel folders. What is read of them
needs no TensorFlow (the card, beside the model or inside a `.keras` zip; the layers' config, which
export checks requests against); loading one as a Keras model imports TensorFlow, on a host only."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from edgekit.card import MAX_CARD_BYTES, ModelCard
from edgekit.errors import ModelFileError, UnsupportedError, first_line
from edgekit.runtime.files import FILE_KINDS, FileKind, ModelFile

CARD_ENTRY = "edgekit_card.json"  # the card inside a .keras file (a zip); Keras ignores the entry


def card_path_for(model_path: Path) -> Path:
    """Where the card of a Keras model lives: `card.json` beside `model.keras` (what `train` writes),
    or `<stem>.card.json` for a model saved under another name."""
    named = model_path.with_name(f"{model_path.stem}.card.json")
    return named if named.exists() else model_path.with_name("card.json")


def card_beside(path: Path) -> ModelCard | None:
    card = card_path_for(Path(path))
    return ModelCard.load(card) if card.exists() else None


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


def _rezip(src: zipfile.ZipFile, dst: zipfile.ZipFile, card: ModelCard) -> None:
    import shutil

    for info in src.infolist():
        if info.filename != CARD_ENTRY:
            with src.open(info) as fin, dst.open(info, "w") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    dst.writestr(CARD_ENTRY, card.to_json(indent=2), compress_type=zipfile.ZIP_DEFLATED)


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
        _rezip(src, dst, card)
    return True


def read_model_config(path: Path) -> dict[str, Any] | None:
    """The Keras config inside a .keras or .h5 file, read without TensorFlow."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        if path.suffix.lower() == ".h5":
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                if raw is None:
                    raise ModelFileError(f"{path} holds weights only (no model_config): save the whole model")
                return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise ModelFileError(f"{path} is not a Keras model edgekit can load: {e}") from None
    return None


def load_keras_model(path: Path, *, safe_mode: bool = True) -> Any:
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


def load_saved_model(path: Path, *, safe_mode: bool = True) -> Any:
    """A SavedModel's serving signature wrapped as a Keras model (one input, its outputs in name order).

    A SavedModel is a program, not a description: its serving function is a TensorFlow graph that
    may hold any op (`tf.io.write_file`, `tf.py_function`...), run as soon as export traces or calls
    it. Like a Lambda layer, it is loaded only when the user says they trust it (`--unsafe`)."""
    if safe_mode:
        raise UnsupportedError(
            f"{path} is a SavedModel, which is a program (its serving function can run any "
            "TensorFlow op, such as writing files, when export calls it): pass --unsafe if you "
            "trust where it came from, or export it from a .keras file"
        )
    from edgekit.deps import quiet_native_stderr
    from edgekit.tfutil import import_tf

    tf, keras = import_tf()
    try:
        with quiet_native_stderr():
            signature = tf.saved_model.load(str(path)).signatures["serving_default"]
            _, kwargs = signature.structured_input_signature
            if len(kwargs) != 1:
                raise UnsupportedError(
                    f"{path} has {len(kwargs)} inputs: edgekit exports models with one input"
                )
            (spec,) = kwargs.values()
            layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
            inputs = keras.Input(batch_shape=tuple(spec.shape), dtype=spec.dtype.name, name="input")
            out = layer(inputs)
    except (KeyError, ValueError, OSError) as e:
        raise ModelFileError(f"{path} is not a SavedModel edgekit can load: {first_line(e)}") from None
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
        out = out[0] if len(out) == 1 else out
    return keras.Model(inputs, out, name=path.name.replace(" ", "_") or "saved_model")


class KerasKind(FileKind):
    """A Keras model file. Its card is beside it (a user may have edited it: it wins) or inside it."""

    name = "keras"
    suffixes = (".keras", ".h5")
    description = "Keras model (.keras, .h5; TensorFlow on the host)"
    whole_file = True

    def card(self, file: ModelFile) -> ModelCard | None:
        return card_beside(file.path) or embedded_keras_card(file.path)

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise UnsupportedError("only .keras files (zips) carry their card inside: an .h5 keeps it beside")
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
            _rezip(src, dst, card)
        return out.getvalue()

    def quantization(self, file: ModelFile) -> str:
        return "fp32"

    def config(self, file: ModelFile) -> dict[str, Any] | None:
        """The layers' config, read without TensorFlow (what export checks a request against)."""
        return file._once("config", lambda f: read_model_config(f.path))

    def load(self, file: ModelFile, *, safe_mode: bool = True) -> Any:
        """The Keras model (imports TensorFlow)."""
        return load_keras_model(file.path, safe_mode=safe_mode)


class SavedModelKind(FileKind):
    """A TensorFlow SavedModel folder: exported through its serving signature; its card beside it."""

    name = "savedmodel"
    suffixes = ()
    description = "TensorFlow SavedModel folder (export with --unsafe)"
    whole_file = False

    def matches(self, path: Path) -> bool:
        return path.is_dir() and (path / "saved_model.pb").is_file()

    def card(self, file: ModelFile) -> ModelCard | None:
        return card_beside(file.path)

    def config(self, file: ModelFile) -> dict[str, Any] | None:
        return None  # no Keras config to read without running TensorFlow

    def load(self, file: ModelFile, *, safe_mode: bool = True) -> Any:
        return load_saved_model(file.path, safe_mode=safe_mode)


FILE_KINDS.add(KerasKind())
FILE_KINDS.add(SavedModelKind())
