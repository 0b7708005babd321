"""ONNX files through onnxruntime, with the best execution provider present."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekit.card import CARD_KEY, ModelCard
from edgekit.errors import ModelFileError, UnsupportedError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.deps import require

INSTALL = "pip install onnxruntime"
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}
# --device choice -> providers tried in order; CPU always last so a run never fails for want of a GPU
_PROVIDERS = {
    "auto": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _ort():
    ort = require("onnxruntime", INSTALL)
    ort.set_default_logger_severity(3)  # provider fallbacks are reported by us, not as log spam
    return ort


_preload_notes: list[str] = []  # what preload_dlls said, once it has run (a library it did not find)
_preloaded: list[bool] = []


def preload_cuda(ort) -> list[str]:
    """Load the CUDA and cuDNN libraries that onnxruntime-gpu's `[cuda,cudnn]` extras put in
    site-packages (nvidia-*), once, before the first CUDA session: the provider does not look there
    by itself. `preload_dlls` exists from onnxruntime 1.21; an older build uses the system's.
    Returns what it printed about libraries it could not load (kept off stdout, which belongs to
    --json results; the session reports the provider it really uses)."""
    if _preloaded or not hasattr(ort, "preload_dlls"):
        return _preload_notes
    _preloaded.append(True)
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.suppress(Exception):
        ort.preload_dlls()
    _preload_notes.extend(line for line in said.getvalue().splitlines() if line.strip())
    return _preload_notes


def _session(path: Path, options: SessionOptions):
    ort = _ort()
    so = ort.SessionOptions()
    if options.threads:
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
    if options.device not in _PROVIDERS:
        raise UnsupportedError(f"unknown device {options.device!r}: use one of {', '.join(_PROVIDERS)}")
    available = set(ort.get_available_providers())
    providers = [p for p in _PROVIDERS[options.device] if p in available]
    if providers[0] != "CPUExecutionProvider":
        preload_cuda(ort)
    if options.device in ("cuda", "tensorrt") and providers == ["CPUExecutionProvider"]:
        raise UnsupportedError(
            f"--device {options.device} needs onnxruntime-gpu: run `pip install 'edgekit[gpu]'`"
        )
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ModelFileError(f"{path} is not a valid ONNX model: {first_line(e)}") from None


def _card_from_session(sess, path: Path) -> ModelCard | None:
    meta = sess.get_modelmeta().custom_metadata_map
    return ModelCard.from_json(meta[CARD_KEY], source=f"card in {path}") if CARD_KEY in meta else None


def read_onnx_card(path: Path) -> ModelCard | None:
    try:  # the onnx package reads metadata without building a session; it is a host-side extra
        import onnx
    except ImportError:
        return _card_from_session(_session(path, SessionOptions(device="cpu")), path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ModelFileError(f"{path} is not a valid ONNX model: {e}") from None
    props = {p.key: p.value for p in model.metadata_props}
    return ModelCard.from_json(props[CARD_KEY], source=f"card in {path}") if CARD_KEY in props else None


def _info(arg) -> TensorInfo:
    shape = tuple(s if isinstance(s, int) else None for s in arg.shape)
    return TensorInfo(arg.name, shape, np.dtype(_DTYPES.get(arg.type, np.float32)))


class OnnxSession(Session):
    backend = "onnxruntime"

    def __init__(self, path: Path, options: SessionOptions) -> None:
        sess = _session(path, options)
        super().__init__(path, _card_from_session(sess, path))
        self._sess = sess
        self.inputs = [_info(a) for a in sess.get_inputs()]
        self.outputs = [_info(a) for a in sess.get_outputs()]
        self._names = [i.name for i in self.inputs]
        # report what is used, never what was asked for (TensorRT falls back quietly)
        self.device = sess.get_providers()[0].replace("ExecutionProvider", "").lower()

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, dict(zip(self._names, feeds)))

    def close(self) -> None:
        self._sess = None


BACKENDS.add(
    "onnxruntime",
    Backend(
        name="onnxruntime",
        suffixes=(".onnx",),
        module="onnxruntime",
        install=INSTALL,
        open=lambda path, options: OnnxSession(path, options),
        read_card=read_onnx_card,
    ),
)
