"""ONNX files through onnxruntime, with the best execution provider present."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.deps import require
from edgekit.errors import MissingDependencyError, ModelFileError, UnsupportedError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.files import ModelFile

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


def ort_reason(e: BaseException) -> str:
    """What onnxruntime says went wrong, without its wrapping: the text after the last
    "[ONNXRuntimeError] : 1 : FAIL : " (an error from deep in a load repeats that prefix around
    a C++ function's signature)."""
    return re.split(r"\[ONNXRuntimeError\] : \d+ : \w+ : ", first_line(e))[-1].strip() or first_line(e)


def _ort():
    ort = require("onnxruntime", INSTALL)
    # fatal only: provider fallbacks are reported by us, and a load's error comes back as the
    # exception we turn into one sentence (at 3 it was printed first, a C++ signature and all)
    ort.set_default_logger_severity(4)
    return ort


_trt_failed: list[bool] = []  # TensorRT is listed but did not load once here: not tried again
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


def _available(ort) -> set[str]:
    """The providers onnxruntime lists, less TensorRT once it failed to load in this process."""
    available = set(ort.get_available_providers())
    if _trt_failed:
        available.discard("TensorrtExecutionProvider")
    return available


def _providers(ort, device: str, cuda_graph: bool = False) -> list:
    """The providers to ask for, in order, with the CUDA provider's CUDA-graph option when wanted."""
    if device not in _PROVIDERS:
        raise UnsupportedError(f"unknown device {device!r}: use one of {', '.join(_PROVIDERS)}")
    available = _available(ort)
    providers = [p for p in _PROVIDERS[device] if p in available]
    if providers and providers[0] != "CPUExecutionProvider":
        preload_cuda(ort)
    if device in ("cuda", "tensorrt") and providers == ["CPUExecutionProvider"]:
        raise UnsupportedError(f"--device {device} needs onnxruntime-gpu: run `pip install 'edgekit[gpu]'`")
    if cuda_graph:
        graph = {"enable_cuda_graph": "1"}
        providers = [(p, graph) if p == "CUDAExecutionProvider" else p for p in providers]
    return providers


def _session(
    path: Path | ModelFile, options: SessionOptions, *, cuda_graph: bool = False, profile: bool = False
):
    """An InferenceSession on a file on disk (onnxruntime reads it, and any external data beside it),
    or on the bytes of a file this process made and holds in memory (export's trials)."""
    file = path if isinstance(path, ModelFile) else None
    path = file.path if file is not None else Path(path)
    model = file.data if file is not None and file.made_here else str(path)
    ort = _ort()
    so = ort.SessionOptions()
    if options.threads:
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
    if profile:
        so.enable_profiling = True
    providers = _providers(ort, options.device, cuda_graph)
    said = io.StringIO()
    try:
        # when a provider fails to load (TensorRT with no libnvinfer), onnxruntime prints an
        # "EP Error" banner on stdout and retries without it: stdout belongs to --json results, and
        # the session says itself which providers it got
        with contextlib.redirect_stdout(said):
            sess = ort.InferenceSession(model, so, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ModelFileError(f"{path} is not a valid ONNX model: {ort_reason(e)}") from None
    if "TensorrtExecutionProvider" in providers and "TensorrtExecutionProvider" not in sess.get_providers():
        _trt_failed.append(True)  # not asked for again in this process: each try costs a load
    return sess


def device_name(provider: str) -> str:
    """The device a provider runs on, as rows name it: CUDAExecutionProvider -> cuda."""
    return provider.replace("ExecutionProvider", "").lower()


def first_device(device: str) -> str:
    """The device a session opened for `device` tries first here: `auto` is TensorRT or CUDA where
    onnxruntime lists them, else the CPU; a named device is itself."""
    if device != "auto":
        return device
    try:
        available = _available(_ort())
    except MissingDependencyError:
        return "cpu"
    tried = [p for p in _PROVIDERS["auto"] if p in available]
    return device_name(tried[0]) if tried else "cpu"


def _info(arg) -> TensorInfo:
    shape = tuple(s if isinstance(s, int) else None for s in arg.shape)
    return TensorInfo(arg.name, shape, np.dtype(_DTYPES.get(arg.type, np.float32)))


_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def _graph_enabled(sess) -> bool:
    """Whether the session's CUDA provider really records a CUDA graph (its options as it reports
    them, not as they were asked for)."""
    options = sess.get_provider_options().get("CUDAExecutionProvider", {})
    return str(options.get("enable_cuda_graph", "0")).lower() in ("1", "true")


def _static(args) -> bool:
    return all(isinstance(d, int) and d > 0 for a in args for d in a.shape)


class OnnxSession(Session):
    """On the CPU, a plain `session.run`. On a GPU, IO binding: inputs and outputs bound once in
    device memory and reused, each input updated in place; with fixed shapes the CUDA provider also
    records a CUDA graph and replays it (DESIGN.md: 1.64 ms -> 0.43 ms for MobileNetV2 at batch 1).
    What ran is reported (`providers`, `execution`, `notes`), never what was asked for."""

    backend = "onnxruntime"
    concurrent = True  # InferenceSession.run is thread-safe (onnxruntime's docs); not with IO binding

    def __init__(self, file: ModelFile, options: SessionOptions) -> None:
        path = file.path
        sess = _session(file, options)
        super().__init__(file)
        self.options = options
        self.notes: list[str] = []
        self.providers: list[str] = list(sess.get_providers())
        gpu = self.providers[0] in _GPU_PROVIDERS
        asked = _PROVIDERS.get(options.device, [])
        available = set(_ort().get_available_providers())
        if (
            "TensorrtExecutionProvider" in asked
            and "TensorrtExecutionProvider" in available
            and ("TensorrtExecutionProvider" not in self.providers)
        ):
            self.notes.append(
                "the TensorRT provider is installed but did not load (is libnvinfer there?): "
                f"ran on {self.providers[0].replace('ExecutionProvider', '')}"
            )
        if options.device in ("cuda", "tensorrt") and not gpu:
            self.notes.append(f"--device {options.device} was asked for, but it ran on the CPU")
        # a CUDA graph replays fixed device addresses: only for a model whose shapes are all fixed
        self.cuda_graph = (
            self.providers[0] == "CUDAExecutionProvider"
            and _static(sess.get_inputs())
            and _static(sess.get_outputs())
        )
        if self.cuda_graph:
            # asked again for the providers that loaded: when TensorRT did not, onnxruntime's own
            # fallback retries with bare provider names and drops the CUDA-graph option (seen on an
            # H200: 0.85 ms where the graph gives 0.37)
            try:
                graph = _session(file, replace(options, device="cuda"), cuda_graph=True)
            except ModelFileError as e:
                # onnxruntime refuses a graph when a node has no CUDA kernel (ConvInteger, say) and
                # runs on the CPU: the session already open runs the file, without one
                self.cuda_graph = False
                why = str(e).partition("is not a valid ONNX model: ")[2] or str(e)
                self.notes.append(f"no CUDA graph: {why}")
            else:
                sess = graph
                self.providers = list(sess.get_providers())
                self.cuda_graph = _graph_enabled(sess)
                if not self.cuda_graph:
                    self.notes.append("no CUDA graph: the CUDA provider did not take the option")
        elif gpu:
            self.notes.append("no CUDA graph: the model has dynamic shapes (IO binding only)")
        self._sess = sess
        self.inputs = [_info(a) for a in sess.get_inputs()]
        self.outputs = [_info(a) for a in sess.get_outputs()]
        self._names = [i.name for i in self.inputs]
        self._out_names = [o.name for o in self.outputs]
        self.device = device_name(self.providers[0])
        self.io_binding = gpu
        # one bound set of buffers per session: shared by threads only on the plain CPU path
        self.concurrent = not gpu
        if self.card is not None and self.inputs:  # as the TFLite backend: the card against the tensor
            self.card.check_input_shape(self.inputs[0].shape, f"{path}'s input tensor")
        self._binding = None  # made on the first run, when the input shapes are known
        self._in_values: list = []
        self._out_values: list = []
        self._bound_shapes: list[tuple[int, ...]] = []
        self._in_dtypes: list[np.dtype] = []

    def profile(self, feeds: Sequence[np.ndarray], runs: int = 50) -> dict[str, object]:
        # the profiler's own session on the device this one runs on
        device = "cpu" if self.device == "cpu" else self.options.device
        return {"ops": profile_onnx(self.file, feeds, replace(self.options, device=device), runs)}

    @property
    def execution(self) -> dict[str, object]:
        """How inferences run here, for a benchmark row."""
        return {
            "providers": self.providers,
            "io_binding": self.io_binding,
            "cuda_graph": self.cuda_graph,
            "notes": list(self.notes),
        }

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not self.io_binding:
            return self._sess.run(None, dict(zip(self._names, feeds, strict=False)))
        return self._run_bound(feeds)

    def _bind(self, feeds: Sequence[np.ndarray]) -> None:
        """Copy the inputs to the device once, and bind them and the outputs there."""
        ort = _ort()
        device = "cuda"
        binding = self._sess.io_binding()
        self._in_values = [
            ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x), device, 0) for x in feeds
        ]
        for name, value in zip(self._names, self._in_values, strict=True):
            binding.bind_ortvalue_input(name, value)
        if self.cuda_graph:  # the graph needs its outputs at fixed addresses: allocate them ourselves
            self._out_values = [
                ort.OrtValue.ortvalue_from_shape_and_type(list(o.shape), o.dtype, device, 0)
                for o in self.outputs
            ]
            for name, value in zip(self._out_names, self._out_values, strict=True):
                binding.bind_ortvalue_output(name, value)
        else:
            self._out_values = []
            for name in self._out_names:
                binding.bind_output(name, device, 0)
        self._binding = binding
        self._bound_shapes = [tuple(x.shape) for x in feeds]
        self._in_dtypes = [np.asarray(x).dtype for x in feeds]

    def _run_bound(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        shapes = [tuple(x.shape) for x in feeds]
        if self._binding is None or shapes != self._bound_shapes:
            if self._binding is not None and self.cuda_graph:
                raise UnsupportedError(
                    f"a CUDA graph replays fixed shapes: this session was bound to {self._bound_shapes}, "
                    f"got {shapes}"
                )
            self._bind(feeds)
        else:  # the same buffers, new values: no allocation, and the graph's addresses hold
            for value, x, dtype in zip(self._in_values, feeds, self._in_dtypes, strict=True):
                value.update_inplace(np.ascontiguousarray(x, dtype=dtype))
        self._sess.run_with_iobinding(self._binding)
        if self._out_values:
            return [v.numpy() for v in self._out_values]
        return self._binding.copy_outputs_to_cpu()

    def close(self) -> None:
        self._binding = None
        self._in_values = self._out_values = []
        self._sess = None


def profile_onnx(
    path: Path | ModelFile, feeds: Sequence[np.ndarray], options: SessionOptions, runs: int = 50
) -> list[dict[str, object]]:
    """Per-operator times from ONNX Runtime's own profiler (`enable_profiling`): a list of
    {op, provider, ms (per run), nodes, share}, slowest first. The profile file is removed after."""
    import json
    import os

    warmup = 5
    sess = _session(path, options, profile=True)
    names = [i.name for i in sess.get_inputs()]
    feed = dict(zip(names, feeds, strict=True))
    for _ in range(warmup + runs):
        sess.run(None, feed)
    out = sess.end_profiling()
    try:
        events = json.loads(Path(out).read_text())
    finally:
        os.remove(out)
    # the warm-up runs (allocations, first-touch) are left out: node events after the start of
    # the first timed "model_run"
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    since = starts[warmup] if len(starts) > warmup else 0
    events = [e for e in events if e.get("ts", 0) >= since]
    per_op: dict[tuple[str, str], dict[str, float]] = {}
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args", {})
        key = (str(args.get("op_name", "?")), str(args.get("provider", "")))
        slot = per_op.setdefault(key, {"us": 0.0, "calls": 0})
        slot["us"] += float(e.get("dur", 0))
        slot["calls"] += 1
    total = sum(v["us"] for v in per_op.values()) or 1.0
    rows = [
        {
            "op": op,
            "provider": provider.replace("ExecutionProvider", ""),
            "ms": round(v["us"] / 1e3 / runs, 5),
            "nodes": round(v["calls"] / runs),
            "share": round(v["us"] / total, 4),
        }
        for (op, provider), v in per_op.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])


BACKENDS.add(
    Backend(
        name="onnxruntime",
        suffixes=(".onnx",),
        module="onnxruntime",
        install=INSTALL,
        open=lambda file, options: OnnxSession(file, options),
        devices=("cpu", "cuda", "tensorrt"),
        first_device_for=first_device,
    ),
)
