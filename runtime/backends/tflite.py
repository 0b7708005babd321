"""TFLite backends: ai-edge-litert first, then tflite-runtime, then tf.lite if TensorFlow happens
to be installed. All three share the `Interpreter` API, so one session class serves them. The
interpreter is given the bytes the file kind read and verified (`model_content`), so what runs is
what was checked, and the file is read once."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.deps import quiet_native_stderr, require
from edgekit.errors import ModelFileError, UnsupportedError
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.files import ModelFile
from edgekit.runtime.tflite_check import (
    VERIFIER,
    cached_verdict,
    file_digest,
    known_sound,
    probe_tflite,
    remember_sound,
    verify_tflite,
)


def _info(detail: dict) -> TensorInfo:
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = (float(scale), int(zero)) if scale else None
    return TensorInfo(
        detail["name"], tuple(int(s) for s in detail["shape"]), np.dtype(detail["dtype"]), quant
    )


def check_sound(file: ModelFile, module: str) -> None:
    """Refuse a file the interpreter of `module` must not see: the structural verifier, then (once
    per file, in a child process where a crash cannot hurt) a load under a memory cap. A file that
    passed both before, known by its stat, skips them; one whose bytes passed, by their digest. A
    file this process made (export's trials, fresh from the converter) is verified, not probed."""
    buf, st = file.data, file.stat
    if st is not None and known_sound(st, module):
        file.checked = True
        return
    if file.made_here:
        if not file.checked:
            verify_tflite(buf, source=str(file.path))
        file.checked = True
        return
    digest = file_digest(buf)
    verdict = cached_verdict(digest, module)
    if verdict is None or not verdict["ok"] or verdict.get("verified") != VERIFIER:
        if not file.checked:
            verify_tflite(buf, source=str(file.path))  # rejects a file that is not a sound TFLite model
        file.checked = True
        _probe(file, module, digest)
    file.checked = True
    if st is not None:
        remember_sound(st, module)


def _probe(file: ModelFile, module: str, digest: str) -> None:
    """`probe_tflite` on the file's bytes: the file itself where they were read from it, else (bytes
    held in memory: a file unpacked from another) a temporary copy, the verdict naming the file."""
    if file.stat is not None:
        probe_tflite(file.path, module, digest)
        return
    from edgekit.fileio import temporary_dir

    with temporary_dir("probe") as tmp:
        copy = tmp / "model.tflite"
        copy.write_bytes(file.data)
        try:
            probe_tflite(copy, module, digest)
        except ModelFileError as e:
            raise ModelFileError(str(e).replace(str(copy), str(file.path))) from None


class TFLiteSession(Session):
    def __init__(self, file: ModelFile, options: SessionOptions, module: str, backend: str) -> None:
        check_sound(file, module)
        super().__init__(file)
        path = file.path
        self.backend = backend
        self.module = module  # for the profiler, which opens its own interpreters
        self.threads = options.threads
        interpreter_cls = importlib.import_module(module).Interpreter
        try:
            kwargs = {"num_threads": options.threads} if options.threads else {}
            with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
                self._it = interpreter_cls(model_content=file.data, **kwargs)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{path} could not be loaded by {backend}: {e}") from None
        self._in = self._it.get_input_details()
        self._out = self._it.get_output_details()
        self.inputs = [_info(d) for d in self._in]
        self.outputs = [_info(d) for d in self._out]
        self._in_index = [d["index"] for d in self._in]
        self._out_index = [d["index"] for d in self._out]
        if self.card is not None and self.inputs:
            self.card.check_input_shape(self.inputs[0].shape, f"{path}'s input tensor")

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        it = self._it
        for index, x in zip(self._in_index, feeds, strict=False):
            it.set_tensor(index, x)
        it.invoke()
        return [it.get_tensor(i) for i in self._out_index]

    def resize(self, shapes: Sequence[Sequence[int]]) -> None:
        """A TFLite interpreter takes a new shape only when told: resize and reallocate; one sentence
        when the model cannot take them."""
        it = self._it
        try:
            for index, shape in zip(self._in_index, shapes, strict=True):
                it.resize_tensor_input(index, list(shape), strict=True)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{self.path.name} cannot take inputs of shape {list(map(list, shapes))}: "
                                 f"{str(e).splitlines()[0]}") from None  # fmt: skip
        self.inputs = [_info(d) for d in it.get_input_details()]
        self.outputs = [_info(d) for d in it.get_output_details()]

    def profile(self, feeds: Sequence[np.ndarray], runs: int = 50) -> dict[str, Any]:
        return profile_tflite(self.file, self.module, self.threads, feeds, runs)

    def close(self) -> None:
        self._it = None


def module_file_present(module: str) -> bool:
    """Whether `module` (a.b.c) is a file inside its installed package, found without importing the
    package (importing TensorFlow takes seconds). Checked by file because a package may be installed
    without the module a backend needs: TensorFlow 2.21's `tensorflow.lite` package is nearly empty,
    and its interpreter (what `tf.lite.Interpreter` is) lives in `tensorflow.lite.python.interpreter`."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not rest:
        return spec is not None
    for root in spec.submodule_search_locations or []:
        base = Path(root, *rest)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
        if any(base.parent.glob(f"{base.name}.*.so")):
            return True
    return False


def tflite_backend(name: str, module: str, install: str, note: str = "") -> Backend:
    """A backend on the `Interpreter` of `module` (registered below; a test makes one of its own)."""

    def open_(file: ModelFile, options: SessionOptions) -> Session:
        lib = require(module, install)
        if not hasattr(lib, "Interpreter"):  # said before the file is probed: the file is not to blame
            raise UnsupportedError(
                f"backend {name} cannot run here: {module} has no Interpreter; use the litert backend"
            )
        return TFLiteSession(file, options, module, name)

    return Backend(
        name=name,
        suffixes=(".tflite",),
        module=module.split(".")[0],
        install=install,
        open=open_,
        note=note,
        extra_check=lambda: module_file_present(module),
    )


BACKENDS.add(tflite_backend("litert", "ai_edge_litert.interpreter", "pip install 'ai-edge-litert>=2.1,<3'"))
BACKENDS.add(
    tflite_backend(
        "tflite-runtime",
        "tflite_runtime.interpreter",
        "pip install tflite-runtime 'numpy<2'",
        note="the last wheel is 2.14 and needs numpy < 2",
    )
)
# TensorFlow's own copy (deprecated in 2.20, still there in 2.21): `tf.lite.Interpreter` is this module's
BACKENDS.add(
    tflite_backend(
        "tf-lite",
        "tensorflow.lite.python.interpreter",
        "pip install 'edgekit[train]'",
        note="only when TensorFlow is installed",
    )
)


def _kind(types: Sequence[type]) -> str:
    names = {np.dtype(t).name for t in types}
    if names & {"int8", "uint8", "int16"}:
        return "int8"
    return "float" if names & {"float32", "float16"} else "other"


def profile_tflite(
    file: ModelFile, module: str, threads: int | None, feeds: Sequence[np.ndarray], runs: int = 50
) -> dict[str, Any]:
    """What the interpreter exposes about where time goes: each operator, whether the XNNPACK
    delegate took it (found by walking back from the delegate's outputs to its inputs), whether it
    computes in int8 or float, and the p50 with and without the default delegate."""
    import time

    interpreter_cls = importlib.import_module(module).Interpreter
    resolver = getattr(importlib.import_module(module), "OpResolverType", None)

    def timed(it) -> float:
        ins = it.get_input_details()
        for d, x in zip(ins, feeds, strict=False):
            if list(d["shape"]) != list(x.shape):
                it.resize_tensor_input(d["index"], list(x.shape))
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), feeds, strict=False):
            it.set_tensor(d["index"], x)
        times = []
        for _ in range(5 + runs):
            t0 = time.perf_counter()
            it.invoke()
            times.append(time.perf_counter() - t0)
        return float(np.median(times[5:]) * 1e3)

    kwargs = {"num_threads": threads} if threads else {}
    with quiet_native_stderr():
        it = interpreter_cls(model_content=file.data, **kwargs)
        no_delegate = getattr(resolver, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None)
        plain = (
            interpreter_cls(model_content=file.data, experimental_op_resolver_type=no_delegate, **kwargs)
            if no_delegate is not None
            else None
        )
    with_delegate = timed(it)
    without = timed(plain) if plain is not None else None
    ops = it._get_ops_details()
    producer = {int(t): o for o in ops if o["op_name"] != "DELEGATE" for t in o["outputs"]}
    delegated: set[int] = set()
    for d in (o for o in ops if o["op_name"] == "DELEGATE"):
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            op = producer.get(t)
            if t in stop or op is None or op["index"] in delegated:
                continue
            delegated.add(op["index"])
            todo.extend(int(x) for x in op["inputs"] if x >= 0)
    rows = [
        {
            "op": o["op_name"],
            "delegate": "XNNPACK" if o["index"] in delegated else "",
            "computes": _kind(list(o["operand_types"]) + list(o["result_types"])),
        }
        for o in ops
        if o["op_name"] != "DELEGATE"
    ]
    return {"ops": rows, "p50_ms_xnnpack": with_delegate, "p50_ms_builtin": without}
