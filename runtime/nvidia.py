"""NVIDIA's libraries for onnxruntime-gpu, apart from the backend that runs sessions: the CUDA and
cuDNN wheels loaded before the first GPU session, the libraries TensorRT's provider needs (read from
its ELF dependencies, each loaded to say which is missing or of another major version), and where
TensorRT keeps its engines. `edgekit doctor` asks the same questions as the backend, here."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

TRT = "TensorrtExecutionProvider"
# what onnxruntime-gpu 1.31.1's TensorRT provider library needs (DESIGN.md: `readelf -d` on
# libonnxruntime_providers_tensorrt.so from the wheel); read from the installed library where it is
TRT_NEEDS = (
    "libnvinfer.so.10",
    "libnvonnxparser.so.10",
    "libcublas.so.13",
    "libcudart.so.13",
    "libcudnn.so.9",
)
TRT_LIBRARY = "libonnxruntime_providers_tensorrt.so"
# the libraries of NVIDIA's own products among a provider's DT_NEEDED (not libc, libstdc++, ...)
_NVIDIA_LIB = re.compile(r"^lib(nv|cu)")


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


def trt_cache_dir() -> Path:
    """Where TensorRT engines are kept between runs, so that a second start does not rebuild them:
    $EDGEKIT_TRT_CACHE (what `--trt-cache` sets), else the user's cache folder / edgekit / tensorrt."""
    if os.environ.get("EDGEKIT_TRT_CACHE"):
        return Path(os.environ["EDGEKIT_TRT_CACHE"]).expanduser()
    from edgekit.runtime.tflite_check import cache_dir

    return cache_dir() / "tensorrt"


def use_trt_cache(folder: Path) -> None:
    """Keep TensorRT engines in `folder` from now on, in this process and the ones it starts (the
    bench measures each row in its own process): `--trt-cache`."""
    os.environ["EDGEKIT_TRT_CACHE"] = str(Path(folder).expanduser().resolve())


def trt_needs(ort) -> tuple[list[str], str]:
    """The NVIDIA libraries the TensorRT provider needs, and whose list it is: read from the installed
    provider library's ELF DT_NEEDED (onnxruntime-gpu ships it beside the module), else onnxruntime-gpu
    1.31.1's as DESIGN.md read it."""
    from edgekit.runtime.native_libs import elf_needed

    library = Path(ort.__file__).parent / "capi" / TRT_LIBRARY
    if library.is_file():
        needed = [n for n in elf_needed(library) if _NVIDIA_LIB.match(n)]
        if needed:
            return needed, "this onnxruntime-gpu's TensorRT provider"
    return list(TRT_NEEDS), "onnxruntime-gpu 1.31's TensorRT provider"


_trt_check: list[tuple[Any, str]] = []  # (LibraryCheck, whose list), once per process


def trt_libraries(ort):
    """Load the libraries the TensorRT provider needs (once per process): a `LibraryCheck` saying
    which loaded, which are missing and which other major versions were found, and whose list it
    is. The CUDA and cuDNN wheels are loaded first, as before any GPU session."""
    from edgekit.runtime.native_libs import load_libraries

    if not _trt_check:
        if TRT in ort.get_available_providers():
            preload_cuda(ort)
        needed, who = trt_needs(ort)
        _trt_check.append((load_libraries(needed), who))
    return _trt_check[0]


def trt_problem(ort) -> str | None:
    """Why the TensorRT provider cannot load here, in one sentence naming the libraries (None: they
    all load). Asked before a session, so a missing libnvinfer costs no failed provider load."""
    check, who = trt_libraries(ort)
    return None if check.ok else check.describe(who)


def trt_options(cache: Path) -> dict[str, str]:
    """The TensorRT provider's options: fp16 kernels allowed (the fp32 files edgekit exports run in
    half precision where TensorRT finds it faster), and engines kept in `cache` with their timing
    cache, so a second start loads them instead of building them again."""
    return {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
    }
