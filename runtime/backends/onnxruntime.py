"""ONNX files through onnxruntime, with the best execution provider present."""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.deps import require
from edgekit.errors import ConfigError, MissingDependencyError, ModelFileError, UnsupportedError, first_line
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo, check_shapes
from edgekit.runtime.files import ModelFile
from edgekit.runtime.nvidia import TRT as _TRT
from edgekit.runtime.nvidia import preload_cuda, trt_cache_dir, trt_options, trt_problem

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


def _available(ort) -> set[str]:
    """The providers onnxruntime lists, less TensorRT where its libraries do not load here (or it
    failed to load once in this process)."""
    available = set(ort.get_available_providers())
    if _TRT in available and (_trt_failed or trt_problem(ort)):
        available.discard(_TRT)
    return available


def _providers(ort, device: str, cuda_graph: bool = False) -> list:
    """The providers to ask for, in order, with the CUDA provider's CUDA-graph option when wanted
    and TensorRT's engine cache and precision."""
    if device not in _PROVIDERS:
        raise UnsupportedError(f"unknown device {device!r}: use one of {', '.join(_PROVIDERS)}")
    available = _available(ort)
    providers = [p for p in _PROVIDERS[device] if p in available]
    if providers and providers[0] != "CPUExecutionProvider":
        preload_cuda(ort)
    if device in ("cuda", "tensorrt") and providers == ["CPUExecutionProvider"]:
        why = trt_problem(ort) if device == "tensorrt" else None
        raise UnsupportedError(
            f"--device {device} needs onnxruntime-gpu: run `pip install 'edgekit[gpu]'`"
            + (f"; and TensorRT's libraries: {why}" if why else "")
        )
    if cuda_graph:
        graph = {"enable_cuda_graph": "1"}
        providers = [(p, graph) if p == "CUDAExecutionProvider" else p for p in providers]
    if _TRT in providers:
        cache = trt_cache_dir()
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"the TensorRT engine cache folder {cache} cannot be made: {e.strerror}"
            ) from None
        providers = [(p, trt_options(cache)) if p == _TRT else p for p in providers]
    return providers


def _session(
    path: Path | ModelFile,
    options: SessionOptions,
    *,
    cuda_graph: bool = False,
    profile: bool = False,
    batch_names: Sequence[str] = (),
):
    """An InferenceSession on a file on disk (onnxruntime reads it, and any external data beside it),
    or on the bytes of a file this process made and holds in memory (export's trials). With
    `options.batch`, the named free dimensions `batch_names` are fixed at it (onnxruntime's
    free-dimension override), so every shape in the graph is known when the session is made."""
    file = path if isinstance(path, ModelFile) else None
    path = file.path if file is not None else Path(path)
    model = file.data if file is not None and file.made_here else str(path)
    ort = _ort()
    so = ort.SessionOptions()
    if options.threads:
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
    if profile:
        import tempfile

        so.enable_profiling = True
        # onnxruntime writes the profile into the working directory unless told where
        so.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"edgekit-profile-{os.getpid()}")
    if options.batch is not None:
        for name in batch_names:
            so.add_free_dimension_override_by_name(name, options.batch)
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
    asked = [p[0] if isinstance(p, tuple) else p for p in providers]
    if _TRT in asked and _TRT not in sess.get_providers():
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


_GPU_PROVIDERS = ("CUDAExecutionProvider", _TRT)


def _graph_enabled(sess) -> bool:
    """Whether the session's CUDA provider really records a CUDA graph (its options as it reports
    them, not as they were asked for)."""
    options = sess.get_provider_options().get("CUDAExecutionProvider", {})
    return str(options.get("enable_cuda_graph", "0")).lower() in ("1", "true")


def _static(args) -> bool:
    return all(isinstance(d, int) and d > 0 for a in args for d in a.shape)


def _batch_names(args) -> list[str]:
    """The names of the inputs' free first dimensions (`unk__44`, `batch`): what a free-dimension
    override can fix. A free dimension with no name cannot be fixed this way."""
    return list(dict.fromkeys(a.shape[0] for a in args if a.shape and isinstance(a.shape[0], str)))


def _cache_files(folder: Path) -> set[str]:
    try:
        return {p.name for p in folder.iterdir()}
    except OSError:
        return set()


class OnnxSession(Session):
    """On the CPU, a plain `session.run`. On a GPU, IO binding: inputs and outputs bound once in
    device memory and reused, each input updated in place; with fixed shapes the CUDA provider also
    records a CUDA graph and replays it (DESIGN.md: 1.64 ms -> 0.43 ms for MobileNetV2 at batch 1).
    A file whose batch dimension is free (every file edgekit exports to ONNX) gets it fixed per
    session on a GPU, at 1 until a batch of another size comes (`resize`, or a run that brings one:
    the session is made again for it), so it gets the graph too (DESIGN.md: 0.78 ms with a free
    batch against 0.355 ms fixed, on an H200). On the CPU it stays free: there is no graph to gain
    and the CPU provider ran both files alike (1.64 against 1.65 ms, MobileNetV2 on the H200 host's
    16 cores: bench/results/gpu-h200-b1.json), while a fixed batch would make every other batch
    open a session again.
    What ran is reported (`providers`, `execution`, `notes`), never what was asked for."""

    backend = "onnxruntime"
    concurrent = True  # InferenceSession.run is thread-safe (onnxruntime's docs); not with IO binding

    def __init__(self, file: ModelFile, options: SessionOptions) -> None:
        super().__init__(file)
        self.options = options
        # the batch follows the inputs when edgekit fixed it (for the graph), not when the caller did
        self._follow = options.batch is None
        self._reopened: list[str] = []
        self._open(options)
        if self.card is not None and self.inputs:  # as the TFLite backend: the card against the tensor
            self.card.check_input_shape(self.inputs[0].shape, f"{self.path}'s input tensor")

    def _open(self, options: SessionOptions) -> None:
        """Open the file for `options`: first as it is (which provider loads, which dimensions are
        free), then, where the batch is to be fixed, again with it fixed, and on CUDA with fixed
        shapes once more with the CUDA-graph option."""
        file = self.file
        self.notes: list[str] = []
        ort = _ort()
        trt_asked = _TRT in _PROVIDERS.get(options.device, []) and _TRT in _available(ort)
        trt_files = _cache_files(trt_cache_dir()) if trt_asked else set()  # to see what a build writes
        t0 = time.perf_counter()
        sess = _session(file, replace(options, batch=None))
        opened_ms = (time.perf_counter() - t0) * 1e3
        self._file_inputs = [_info(a) for a in sess.get_inputs()]
        names = _batch_names(sess.get_inputs())
        self._batch_names = names
        self.providers: list[str] = list(sess.get_providers())
        first = self.providers[0]
        gpu = first in _GPU_PROVIDERS
        self._note_trt(options)
        if options.device in ("cuda", "tensorrt") and not gpu:
            self.notes.append(f"--device {options.device} was asked for, but it ran on the CPU")
        want_graph = first == "CUDAExecutionProvider" and options.cuda_graph
        batch = options.batch
        if batch is None and names and (want_graph or first == _TRT):
            batch = 1  # fixed here, for the graph (or one TensorRT engine); another batch reopens
        fixed = replace(options, batch=batch) if batch is not None and names else None
        if fixed is not None and not want_graph:
            del sess  # one session on the device at a time
            t0 = time.perf_counter()
            sess = _session(file, fixed, batch_names=names)
            opened_ms = (time.perf_counter() - t0) * 1e3
            self.providers = list(sess.get_providers())
        self.cuda_graph = False
        if want_graph:
            sess = self._graph_session(sess, fixed, names)
        elif first == "CUDAExecutionProvider" and not options.cuda_graph:
            self.notes.append("no CUDA graph: not asked for (IO binding only)")
        # where the batch is: the inputs whose first dimension is free in the file
        self._batch_at = [i for i, a in enumerate(self._file_inputs) if a.shape and a.shape[0] is None]
        taken = [sess.get_inputs()[i].shape[0] for i in self._batch_at]
        self.fixed_batch = batch if fixed is not None and taken and all(d == batch for d in taken) else None
        if self.fixed_batch is not None:
            why = (
                "for the CUDA graph"
                if self.cuda_graph
                else "for one TensorRT engine of fixed shapes"
                if self.providers[0] == _TRT
                else "as asked"
            )
            self.notes.append(
                f"batch fixed at {self.fixed_batch} {why} (the file's batch dimension "
                f"{', '.join(names)} is free: onnxruntime's free-dimension override)"
            )
        self.trt: dict[str, Any] = {}
        if self.providers[0] == _TRT:
            cache = trt_cache_dir()
            built = sorted(_cache_files(cache) - trt_files)
            self.trt = {
                "engine_cache": str(cache),
                "fp16": True,
                "session_ms": round(opened_ms, 1),
                "engine_files_written": built,
                "engine": "built"
                if built
                else "loaded from the cache"
                if _static(sess.get_inputs())
                else "built at the first run (dynamic shapes)",
            }
        self._sess = sess
        self.inputs = [_info(a) for a in sess.get_inputs()]
        self.outputs = [_info(a) for a in sess.get_outputs()]
        self._names = [i.name for i in self.inputs]
        self._out_names = [o.name for o in self.outputs]
        self.device = device_name(self.providers[0])
        self.io_binding = gpu
        # one bound set of buffers per session: shared by threads only on the plain CPU path
        self.concurrent = not gpu
        self._binding = None  # made on the first run, when the input shapes are known
        self._in_values: list = []
        self._out_values: list = []
        self._bound_shapes: list[tuple[int, ...]] = []
        self._in_dtypes: list[np.dtype] = []

    def _note_trt(self, options: SessionOptions) -> None:
        """Say so where TensorRT was asked for and is installed but did not run, and why."""
        ort = _ort()
        if _TRT not in _PROVIDERS.get(options.device, []) or _TRT not in ort.get_available_providers():
            return
        if _TRT in self.providers:
            return
        why = trt_problem(ort) or "is libnvinfer there?"
        self.notes.append(
            f"the TensorRT provider is installed but did not load ({why}): "
            f"ran on {self.providers[0].replace('ExecutionProvider', '')}"
        )

    def _graph_session(self, sess, fixed: SessionOptions | None, names: list[str]):
        """The session on CUDA with a CUDA graph where every shape is fixed (the batch by `fixed`),
        else `sess` (or the file with its batch fixed as asked), with a note saying why not."""
        options = fixed or self.options
        if fixed is not None and not all(isinstance(d, int) for a in sess.get_inputs() for d in a.shape[1:]):
            self.notes.append(
                "no CUDA graph: the model has dynamic shapes besides its batch dimension (IO binding only)"
            )
            return self._without_graph(sess, fixed, names)
        if fixed is None and not _static(sess.get_inputs()):
            self.notes.append("no CUDA graph: the model has dynamic shapes (IO binding only)")
            return sess
        if not _static(sess.get_outputs()) and fixed is None:
            self.notes.append("no CUDA graph: the model's output shapes are not fixed (IO binding only)")
            return sess
        # asked again for the providers that loaded: when TensorRT did not, onnxruntime's own
        # fallback retries with bare provider names and drops the CUDA-graph option (seen on an
        # H200: 0.85 ms where the graph gives 0.37)
        try:
            graph = _session(self.file, replace(options, device="cuda"), cuda_graph=True, batch_names=names)
        except ModelFileError as e:
            # onnxruntime refuses a graph when a node has no CUDA kernel (ConvInteger, say) and
            # runs on the CPU: the session already open runs the file, without one
            why = str(e).partition("is not a valid ONNX model: ")[2] or str(e)
            self.notes.append(f"no CUDA graph: {why}")
            return self._without_graph(sess, fixed, names)
        if not (_static(graph.get_inputs()) and _static(graph.get_outputs())):
            # a graph replays the addresses of its first run: with a shape still free it would give
            # wrong answers, so it is not kept
            del graph
            self.notes.append(
                "no CUDA graph: shapes other than the batch are free in this file (IO binding only)"
            )
            return self._without_graph(sess, fixed, names)
        self.providers = list(graph.get_providers())
        self.cuda_graph = _graph_enabled(graph)
        if not self.cuda_graph:
            self.notes.append("no CUDA graph: the CUDA provider did not take the option")
        return graph

    def _without_graph(self, sess, fixed: SessionOptions | None, names: list[str]):
        """The file with no graph: as first opened, or with its batch fixed where the caller fixed it."""
        if fixed is None or self.options.batch is None:
            return sess
        del sess
        return _session(self.file, fixed, batch_names=names)

    def resize(self, shapes: Sequence[Sequence[int]]) -> None:
        """Take inputs of these shapes from now on: checked against the file's own sizes; where the
        batch is fixed, a new batch makes the session again with it fixed there (a new CUDA graph;
        Session.resize is how a caller says the batch changes on purpose)."""
        check_shapes(self.path, self._file_inputs, shapes)
        batch = self._batch_of(shapes)
        if self.fixed_batch is not None and batch is not None and batch != self.fixed_batch:
            self._rebatch(batch)

    def _batch_of(self, shapes: Sequence[Sequence[int]]) -> int | None:
        sizes = {tuple(shapes[i])[0] for i in self._batch_at if i < len(shapes) and len(shapes[i])}
        if len(sizes) > 1:
            raise ConfigError(
                f"{self.path.name}'s inputs share one batch dimension: got batches {sorted(sizes)}"
            )
        return next(iter(sizes), None)

    def _rebatch(self, batch: int) -> None:
        """Open the file again with the batch fixed at `batch` (what a new batch costs is said)."""
        old = self.fixed_batch
        self.close()
        if not self._follow:  # the caller's batch, changed by the caller
            self.options = replace(self.options, batch=batch)
        t0 = time.perf_counter()
        self._open(replace(self.options, batch=batch))
        self._reopened.append(
            f"made again for a batch of {batch} (was {old}) in {(time.perf_counter() - t0) * 1e3:.0f} ms"
        )
        self.notes.extend(self._reopened)

    def profile(self, feeds: Sequence[np.ndarray], runs: int = 50) -> dict[str, object]:
        # the profiler's own session on the device this one runs on, with the batch fixed as here
        device = "cpu" if self.device == "cpu" else self.options.device
        options = replace(self.options, device=device, batch=self.fixed_batch)
        return {"ops": profile_onnx(self.file, feeds, options, runs, batch_names=self._batch_names)}

    @property
    def execution(self) -> dict[str, object]:
        """How inferences run here, for a benchmark row."""
        out: dict[str, object] = {
            "providers": self.providers,
            "io_binding": self.io_binding,
            "cuda_graph": self.cuda_graph,
            "batch_fixed": self.fixed_batch,
            "notes": list(self.notes),
        }
        if self.trt:
            out["tensorrt"] = dict(self.trt)
        return out

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.fixed_batch is not None:
            self._check_batch(feeds)
        if not self.io_binding:
            return self._sess.run(None, dict(zip(self._names, feeds, strict=False)))
        return self._run_bound(feeds)

    def _check_batch(self, feeds: Sequence[np.ndarray]) -> None:
        """A batch other than the fixed one: the session follows it (made again) where it fixed the
        batch itself, else one sentence."""
        batch = self._batch_of([np.shape(x) for x in feeds])
        if batch is None or batch == self.fixed_batch:
            return
        if not self._follow:
            raise UnsupportedError(
                f"this session of {self.path.name} was opened with its batch fixed at {self.fixed_batch}: "
                f"it cannot take a batch of {batch} (resize it first, or open one with that batch)"
            )
        self._rebatch(batch)

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
    path: Path | ModelFile,
    feeds: Sequence[np.ndarray],
    options: SessionOptions,
    runs: int = 50,
    batch_names: Sequence[str] = (),
) -> list[dict[str, object]]:
    """Per-operator times from ONNX Runtime's own profiler (`enable_profiling`): a list of
    {op, provider, ms (per run), nodes, share}, slowest first; `provider` is where the nodes ran
    (CPU, CUDA: a node with no CUDA kernel shows as CPU, the copies it forces as MemcpyToHost and
    MemcpyFromHost on CUDA). On a GPU a node's time is what the host spent in it (a kernel launch,
    or the wait of a copy back), not the device's. The profile file is removed after."""
    import json

    warmup = 5
    sess = _session(path, options, profile=True, batch_names=batch_names)
    names = [i.name for i in sess.get_inputs()]
    feed = dict(zip(names, feeds, strict=True))
    try:
        for _ in range(warmup + runs):
            sess.run(None, feed)
    finally:  # a run that fails leaves no profile file behind
        out = sess.end_profiling()
        try:
            text = Path(out).read_text()
        finally:
            os.remove(out)
    events = json.loads(text)
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
