"""TFLite backends: ai-edge-litert first, then tflite-runtime, then tf.lite if TensorFlow happens
to be installed. All three share the `Interpreter` API, so one session class serves them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.card import CARD_KEY, ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.deps import installed, quiet_native_stderr, require
from edgekit.runtime.metadata import read_tflite_metadata


def read_tflite_card(path: Path) -> ModelCard | None:
    try:
        buf = Path(path).read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    meta = read_tflite_metadata(buf, source=str(path))
    return ModelCard.from_json(meta[CARD_KEY], source=f"card in {path}") if CARD_KEY in meta else None


def _info(detail: dict) -> TensorInfo:
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = (float(scale), int(zero)) if scale else None
    return TensorInfo(
        detail["name"], tuple(int(s) for s in detail["shape"]), np.dtype(detail["dtype"]), quant
    )


class TFLiteSession(Session):
    def __init__(self, path: Path, options: SessionOptions, module: str, backend: str) -> None:
        card = read_tflite_card(path)  # also rejects a file that is not a TFLite model
        super().__init__(path, card)
        self.backend = backend
        interpreter_cls = importlib.import_module(module).Interpreter
        try:
            kwargs = {"num_threads": options.threads} if options.threads else {}
            with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self._it = interpreter_cls(model_path=str(path), **kwargs)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{path} could not be loaded by {backend}: {e}") from None
        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self.inputs = [_info(d) for d in self._in]
        self.outputs = [_info(d) for d in self._out]
        self._in_index = [d["index"] for d in self._in]
        self._out_index = [d["index"] for d in self._out]

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        it = self._it
        for index, x in zip(self._in_index, feeds):
            it.set_tensor(index, x)
        it.invoke()
        return [it.get_tensor(i) for i in self._out_index]

    def close(self) -> None:
        self._it = None


def _make(name: str, module: str, install: str, note: str = "") -> Backend:
    def open_(path: Path, options: SessionOptions) -> Session:
        require(module.split(".")[0], install)
        return TFLiteSession(path, options, module, name)

    return BACKENDS.add(
        name,
        Backend(
            name=name,
            suffixes=(".tflite",),
            module=module.split(".")[0],
            install=install,
            open=open_,
            read_card=read_tflite_card,
            note=note,
            extra_check=lambda: installed(module),
        ),
    )


_make("litert", "ai_edge_litert.interpreter", "pip install 'ai-edge-litert>=2.1,<3'")
_make(
    "tflite-runtime",
    "tflite_runtime.interpreter",
    "pip install tflite-runtime 'numpy<2'",
    note="the last wheel is 2.14 and needs numpy < 2",
)
_make("tf-lite", "tensorflow.lite", "pip install 'edgekit[train]'", note="only when TensorFlow is installed")
