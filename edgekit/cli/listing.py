from __future__ import annotations

import platform
import re
import shutil

import typer

from edgekit.cli.core import app, command


def _mark(ok: bool) -> str:
    return "yes" if ok else "no"


@app.command("list")
@command
def list_() -> None:
    """Every recipe, export format, quantization, backend, task and source, and whether it is usable here."""
    from edgekit.deps import installed
    from edgekit.export.base import EXPORTERS, exporter_names
    from edgekit.models.recipe import get_recipe, recipe_names
    from edgekit.runtime.backends import BACKENDS
    from edgekit.runtime.sources import SOURCES
    from edgekit.runtime.tasks import task_names

    training = installed("tensorflow")
    typer.echo("recipes (training needs TensorFlow: " + _mark(training) + ")")
    for name in recipe_names():
        typer.echo(f"  {name:<16} {get_recipe(name).description}")
    typer.echo("export formats (host side, needs TensorFlow: " + _mark(training) + ")")
    for name in exporter_names():
        e = EXPORTERS.get(name)
        typer.echo(f"  {name:<14} {', '.join(m.value for m in e.modes):<28} {e.description}")
    typer.echo("backends")
    for name, b in BACKENDS.items():
        note = f"  ({b.note})" if b.note else ""
        hint = "" if b.available() else f"  install: {b.install}"
        typer.echo(f"  {name:<14} {' '.join(b.suffixes):<14} installed: {_mark(b.available())}{note}{hint}")
    typer.echo("tasks")
    for name in task_names():
        typer.echo(f"  {name}")
    typer.echo("sources (works here: what this machine has for each)")
    for kind in SOURCES:
        ok, why = kind.works_here()
        typer.echo(
            f"  {kind.name:<14} works here: {_mark(ok):<4} {kind.description}{f'  ({why})' if why else ''}"
        )
    from edgekit.runtime.sinks import SINKS

    typer.echo("sinks (`--save` picks one by what it names; --show and --json by flag)")
    for sink in SINKS:
        takes = " ".join(sink.suffixes) or ("a folder" if sink.matches else "by flag")
        typer.echo(f"  {sink.name:<14} {takes:<40} {sink.description}")
    from edgekit.runtime.datasets.synth import GENERATORS, generator_names

    typer.echo("data generators (`edgekit data make NAME --out DIR`)")
    for name in generator_names():
        gen = GENERATORS.get(name)
        needs = f"  needs {gen.needs}: {_mark(shutil.which(gen.needs) is not None)}" if gen.needs else ""
        typer.echo(f"  {name:<14} {gen.description}{needs}")


@app.command()
@command
def doctor() -> None:
    """What is installed and visible: Python, libraries, execution providers, cameras."""
    from importlib import metadata

    from edgekit.deps import installed

    typer.echo(f"python          {platform.python_version()} on {platform.system()} {platform.machine()}")
    for dist, module in [
        ("numpy", "numpy"),
        ("opencv-python", "cv2"),
        ("opencv-python-headless", "cv2"),
        ("onnxruntime", "onnxruntime"),
        ("onnxruntime-gpu", "onnxruntime"),
        ("ai-edge-litert", "ai_edge_litert"),
        ("tflite-runtime", "tflite_runtime"),
        ("tensorflow", "tensorflow"),
        ("tensorflow-cpu", "tensorflow"),
        ("keras", "keras"),
        ("tf2onnx", "tf2onnx"),
        ("onnx", "onnx"),
    ]:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist.endswith(("-gpu", "-cpu", "-headless")):  # variants: shown only when installed
                continue
            if any(_has_dist(f"{dist}-{v}") for v in ("gpu", "cpu", "headless")):
                continue  # the module comes from its variant, shown on its own line
            version = "installed" if installed(module) else "not installed"
        typer.echo(f"{dist:<15} {version}")
    if installed("onnxruntime"):
        for line in [*_onnxruntime_report(), *_tensorrt_report()]:
            typer.echo(line)
    from edgekit.runtime.sources.camera import list_cameras
    from edgekit.runtime.sources.picam import list_picams

    for tool, why in [("espeak-ng", "synthesising the kws keyword data")]:
        where = shutil.which(tool)
        typer.echo(f"{tool:<16}{where or f'not found (for {why}: apt-get install {tool})'}")
    cams = list_cameras()
    typer.echo(
        f"cameras         {', '.join(map(str, cams)) if cams else 'none found'} (V4L2/OpenCV: --source N)"
    )
    picams = list_picams()
    if picams is None:
        on_pi = platform.machine() in ("aarch64", "armv7l", "armv6l")
        hint = " (for a Pi camera: sudo apt install python3-picamera2)" if on_pi else ""
        typer.echo(f"Pi cameras      Picamera2 not installed{hint}")
    else:
        typer.echo(
            f"Pi cameras      {', '.join(picams) if picams else 'none found'} (Picamera2: --source picam:N)"
        )
    if not installed("ai_edge_litert") and not installed("tflite_runtime"):
        typer.echo(
            "no TFLite interpreter: `pip install 'ai-edge-litert>=2.1,<3'` (CPython 3.10-3.13 on Linux x86-64 "
            "and aarch64, macOS arm64, Windows); on 32-bit ARM `pip install 'edgekit[tflite-runtime]'`"
        )


def _onnxruntime_report() -> list[str]:
    """Which onnxruntime build is installed, what CUDA it was built for, and whether its CUDA
    provider loads here (a session on the shipped BlazeFace ONNX, which says what is used)."""
    from importlib import metadata

    import onnxruntime as ort

    lines = [f"onnxruntime providers: {', '.join(ort.get_available_providers())}"]
    names = [d for d in ("onnxruntime", "onnxruntime-gpu") if _has_dist(d)]
    if len(names) > 1:  # both wheels write the same `onnxruntime` folder: whichever came last won
        lines.append(
            "onnxruntime and onnxruntime-gpu are both installed and share one module: run "
            "`pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'onnxruntime-gpu[cuda,cudnn]'`"
        )
    cuda = getattr(ort, "cuda_version", "") or _build_info("cuda_version")
    if not cuda:
        return lines
    needs = [r.split(";")[0].strip() for r in metadata.requires("onnxruntime-gpu") or [] if "extra ==" in r]
    needs = [r for r in needs if r.startswith("nvidia-")]
    lines.append(
        f"onnxruntime CUDA build: CUDA {cuda}"
        + (f"; its [cuda,cudnn] extras: {', '.join(needs)}" if needs else "")
    )
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return lines
    used, why = _cuda_session_providers(ort)
    if used and used[0] == "CUDAExecutionProvider":
        lines.append("CUDA provider   loaded")
    else:
        fell_back = why or "fell back to " + ", ".join(used)
        lines.append(f"CUDA provider   did not load ({fell_back}): {cuda_missing(cuda.split('.')[0], needs)}")
    return lines


def _tensorrt_report() -> list[str]:
    """Whether onnxruntime's TensorRT provider can load here: its libraries (TensorRT, CUDA, cuDNN,
    by the names the provider asks the loader for, read from its ELF dependencies) loaded one by
    one, and for each that does not, whether another major version is here instead (TensorRT 11
    where the provider needs 10). Said where the provider is installed or a TensorRT is on the
    machine; nothing on a machine with neither. The provider itself is tried by the first session:
    a TensorRT engine build takes too long for a check."""
    import onnxruntime as ort

    from edgekit.runtime.nvidia import trt_cache_dir, trt_libraries

    listed = "TensorrtExecutionProvider" in ort.get_available_providers()
    check, who = trt_libraries(ort)
    tensorrt = [n for n in check.needed if n.startswith(("libnvinfer", "libnvonnxparser"))]
    here = [n for n in tensorrt if n in check.loaded or check.missing.get(n) or n in check.reasons]
    if not listed and not here:
        return []
    lines = []
    if not listed:
        lines.append(
            "TensorRT        this onnxruntime has no TensorRT provider (onnxruntime-gpu has it: "
            "`pip install 'edgekit[gpu]'`)"
        )
    if check.ok:
        lines.append(
            f"TensorRT        its libraries load ({', '.join(check.loaded)}); engines are cached in "
            f"{trt_cache_dir()} (--trt-cache)"
        )
    else:
        lines.append(
            f"TensorRT        {'provider cannot load' if listed else 'libraries'}: {check.describe(who)}"
        )
    return lines


def cuda_missing(major: str, needs: list[str], driver: bool | None = None) -> str:
    """What keeps the CUDA provider from loading, the most basic first: no NVIDIA driver (a machine
    or a container without a GPU: the libraries alone cannot help), then the CUDA and cuDNN wheels
    the build was made for. `needs` are the gpu wheel's extras requirements (`nvidia-...~=13.0`)."""
    if driver is None:
        driver = nvidia_driver_loads()
    if not driver:
        return (
            "no NVIDIA driver here (libcuda.so.1 does not load): run on a machine with an NVIDIA GPU "
            "and its driver, and give a container `--gpus all`"
        )
    names = [re.split(r"[\s~=<>!\[;]", r, maxsplit=1)[0] for r in needs]
    missing = [n for n in names if n and not _has_dist(n)]
    if missing:
        return (
            f"the CUDA {major} and cuDNN 9 wheels it loads are not installed ({', '.join(missing)}): "
            "`pip install 'onnxruntime-gpu[cuda,cudnn]'`"
        )
    return (
        f"the driver and the CUDA {major} and cuDNN 9 libraries are there, so the driver may be too old "
        f"for CUDA {major} (see nvidia-smi), or another CUDA on LD_LIBRARY_PATH came first"
    )


def nvidia_driver_loads() -> bool:
    """Whether the NVIDIA driver's CUDA library loads in this process."""
    import ctypes
    import sys

    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


def _has_dist(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _build_info(name: str) -> str:
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return ""
    return str(getattr(info, name, ""))


def _cuda_session_providers(ort) -> tuple[list[str], str]:
    """The providers a session asked for CUDA really uses, and the first line of any error."""
    from importlib.resources import files

    from edgekit.deps import quiet_native_stderr
    from edgekit.errors import first_line
    from edgekit.runtime.nvidia import preload_cuda

    model = files("edgekit.runtime.assets") / "face_detection_front_128x128_barracuda.onnx"
    notes = [n for n in preload_cuda(ort) if n.startswith("Failed to load")]
    try:
        with quiet_native_stderr():
            sess = ort.InferenceSession(
                str(model), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
            )
    except Exception as e:
        return [], first_line(e)
    used = sess.get_providers()
    if used[0] != "CUDAExecutionProvider" and notes:  # the first library missing says the most
        return used, notes[0].split(":")[0].replace("Failed to load", "cannot load")
    return used, ""
