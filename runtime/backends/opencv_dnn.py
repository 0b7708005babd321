"""Darknet `.cfg` + `.weights` through OpenCV DNN, as the course runs YOLOv3 and YOLOv4-tiny.

The model is named by either file; the other has the same name beside it (`yolov4-tiny.cfg` and
`yolov4-tiny.weights`). The cfg is read and the weights' size checked here first, because OpenCV
reads a short weights file without complaint. Outputs are the `[yolo]` layers'
(`getUnconnectedOutLayersNames`): rows of (cx, cy, w, h, objectness, class scores) in input fractions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.deps import require
from edgekit.errors import ModelFileError, UnsupportedError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.darknet_suffixes import CFG_SUFFIX, WEIGHTS_SUFFIX
from edgekit.runtime.files import ModelFile

INSTALL = "pip install 'opencv-python>=4.10,<5'"  # OpenCV 5 removed the Darknet importer
DEVICES = ("auto", "cpu", "cuda")


def _cv2():
    cv2 = require("cv2", INSTALL)
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise UnsupportedError(
            f"OpenCV {cv2.__version__} has no Darknet importer (OpenCV 5 removed it): run `{INSTALL}`, "
            "or convert the model with `edgekit import darknet`"
        )
    return cv2


def cuda_available(cv2) -> bool:
    """Whether this OpenCV build has the CUDA DNN backend and sees a CUDA device (pip wheels never do)."""
    try:
        targets = cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA)
        return cv2.dnn.DNN_TARGET_CUDA in targets and cv2.cuda.getCudaEnabledDeviceCount() > 0
    except (AttributeError, cv2.error):
        return False


class OpenCvDnnSession(Session):
    backend = "opencv-dnn"

    def __init__(self, file: ModelFile, options: SessionOptions) -> None:
        from edgekit.runtime.darknet import check_weights, model_pair, read_cfg

        cv2 = _cv2()
        cfg_path, weights_path = model_pair(file.path)
        cfg = read_cfg(cfg_path)
        check_weights(cfg, weights_path)
        super().__init__(file)
        self.card = None  # a cfg carries no card: edgekit.runtime.inferred_cards works one out
        self.cfg = cfg
        self.device = self._device(cv2, options.device)
        if options.threads:
            cv2.setNumThreads(options.threads)  # process-wide: OpenCV has no per-network setting
        try:
            net = cv2.dnn.readNetFromDarknet(str(cfg_path), str(weights_path))
        except cv2.error as e:
            raise ModelFileError(f"OpenCV cannot read {cfg_path.name}: {_cv_message(e)}") from None
        if self.device == "cuda":
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        else:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self._net, self._cv2 = net, cv2
        self._names = list(net.getUnconnectedOutLayersNames())
        heads = {f"yolo_{h.layer}": h for h in cfg.heads()}
        if not self._names or any(n not in heads for n in self._names):
            raise UnsupportedError(
                f"{cfg_path.name} ends in {', '.join(self._names) or 'nothing'}, not only [yolo] layers"
            )
        h, w, c = cfg.input_shape
        self.inputs = [TensorInfo("data", (1, c, h, w), np.dtype(np.float32))]
        self.outputs = [
            TensorInfo(n, (heads[n].rows, 5 + heads[n].classes), np.dtype(np.float32)) for n in self._names
        ]

    @staticmethod
    def _device(cv2, device: str) -> str:
        if device not in DEVICES:
            raise UnsupportedError(f"OpenCV DNN runs on --device {', '.join(DEVICES)}, not {device!r}")
        has_cuda = cuda_available(cv2)
        if device == "cuda" and not has_cuda:
            raise UnsupportedError(
                "--device cuda needs an OpenCV built with CUDA and a CUDA device (the opencv-python "
                "wheels have no CUDA): use --device cpu, or `edgekit import darknet` and run the ONNX "
                "file on onnxruntime-gpu"
            )
        return "cuda" if has_cuda and device != "cpu" else "cpu"

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._net.setInput(np.ascontiguousarray(feeds[0], dtype=np.float32))
        try:
            return list(self._net.forward(self._names))
        except self._cv2.error as e:
            raise ModelFileError(f"OpenCV DNN failed on {self.path.name}: {_cv_message(e)}") from None

    def close(self) -> None:
        self._net = None


def _cv_message(e: Exception) -> str:
    # "OpenCV(4.14.0) /io/.../darknet_importer.cpp:217: error: (-212:Parsing error) Failed to ..."
    text = first_line(e)
    return text.split(") ", 2)[-1] if "error: (" in text else text


BACKENDS.add(
    Backend(
        name="opencv-dnn",
        suffixes=(CFG_SUFFIX, WEIGHTS_SUFFIX),
        module="cv2",
        install=INSTALL,
        open=lambda file, options: OpenCvDnnSession(file, options),
        devices=DEVICES[1:],
        note="Darknet .cfg + .weights (the same name beside it); CUDA when OpenCV was built with it",
        extra_check=lambda: hasattr(require("cv2", INSTALL).dnn, "readNetFromDarknet"),
    ),
)
