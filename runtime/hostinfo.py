"""What a benchmark figure depends on besides the model: the CPU and the flags that decide int8
speed, the libraries and their versions, the GPU and driver, and how busy the machine was.

Every `edgekit bench` result carries this, so a number read on another machine months later can
be explained (an int8 model 1.46x slower than fp32 on an AVX2-only EPYC is 0.45x on a VNNI Xeon)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

# the /proc/cpuinfo flags that decide int8 (and fp16) kernel speed
X86_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")  # fmt: skip
ARM_FLAGS = ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")
# the module each library is imported as, and the distributions that ship it
PACKAGES = {
    "onnxruntime": ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    "litert": ("ai_edge_litert", ("ai-edge-litert",)),
    "tflite-runtime": ("tflite_runtime", ("tflite-runtime",)),
    "opencv": ("cv2", ("opencv-python", "opencv-python-headless", "opencv-contrib-python")),
    "numpy": ("numpy", ("numpy",)),
    "tensorflow": ("tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow_cpu")),
}
BUSY_LOAD = 0.5  # a 1-minute load average above this many runnable tasks per core is a busy machine


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip().lower(), value.strip())
    return out


def cpu() -> dict[str, Any]:
    info = _cpuinfo()
    # x86 lists "flags", Arm lists "Features"; the model name is "model name" on x86 and often
    # missing on Arm, where the implementer and part numbers say it
    flags = set((info.get("flags") or info.get("features") or "").split())
    wanted = X86_FLAGS if platform.machine().lower() in ("x86_64", "amd64", "i686") else ARM_FLAGS
    name = info.get("model name") or info.get("hardware") or platform.processor() or ""
    if not name and "cpu implementer" in info:
        name = f"implementer {info['cpu implementer']} part {info.get('cpu part', '?')}"
    return {
        "model": name,
        "flags": [f for f in wanted if f in flags],
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def versions() -> dict[str, str | None]:
    """Each library's version, as the distribution that ships the module Python imports reports it.
    Where two distributions of one library are installed (onnxruntime and onnxruntime-gpu: both
    ship `onnxruntime`), the one whose folder holds the imported module is named, and the other is
    said too; nothing is imported to find out."""
    found: dict[str, str | None] = {}
    for key, (module, dists) in PACKAGES.items():
        installed = []
        for name in dists:
            try:
                dist = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                continue
            if all(_key(d.metadata["Name"]) != _key(dist.metadata["Name"]) for _, d in installed):
                installed.append((name, dist))  # tensorflow-cpu and tensorflow_cpu are one distribution
        if not installed:
            found[key] = None
            continue
        name, dist = _importing(module, installed)
        text = dist.version + ("" if name == dists[0] else f" ({name})")
        others = [f"{n} {d.version}" for n, d in installed if n != name]
        found[key] = text + (f"; {', '.join(others)} also installed" if others else "")
    return found


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _importing(module: str, installed: list) -> tuple[str, Any]:
    """Of the installed distributions, the one whose site folder the module is imported from
    (the first one where that cannot be told: both in one folder, or the module not found)."""
    from importlib.util import find_spec

    if len(installed) == 1:
        return installed[0]
    try:
        spec = find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return installed[0]
    origin = Path(spec.origin).resolve()
    sites = [Path(str(dist.locate_file(""))).resolve() for _, dist in installed]
    for (name, dist), site in zip(installed, sites, strict=True):
        # several in one site folder overwrote each other's module: that folder cannot tell them apart
        if origin.is_relative_to(site / module.split(".")[0]) and sites.count(site) == 1:
            return name, dist
    return installed[0]


def gpu() -> list[dict[str, str]]:
    """GPUs as nvidia-smi lists them (name, memory, driver, CUDA version); empty where there is none."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        query = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        head = subprocess.run([smi], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    cuda = ""
    if "CUDA Version:" in head:
        cuda = head.split("CUDA Version:", 1)[1].split()[0]
    gpus = []
    for line in query.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2], "cuda": cuda})
    return gpus


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def busy(load: float | None) -> bool:
    """Whether the machine had more runnable work than BUSY_LOAD per core."""
    cores = os.cpu_count() or 1
    return load is not None and load > BUSY_LOAD * cores


def host() -> dict[str, Any]:
    """Everything a result needs to be read on another machine."""
    from edgekit import __version__

    return {
        "hostname": platform.node(),
        "cpu": cpu(),
        "arch": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(),
        "gpu": gpu(),
        "edgekit": __version__,
        "load_average": load_average(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rss_peak_mb() -> float | None:
    """This process's peak resident memory (VmHWM) in MB; None where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    except (ImportError, OSError):
        return None
