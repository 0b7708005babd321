from __future__ import annotations

import platform
import shutil

import typer

from edgekit.cli.core import app, command


def _mark(ok: bool) -> str:
    return "yes" if ok else "no"


def source_works_here(name: str, produces: str) -> tuple[bool, str]:
    """Whether a source can be read on this machine, and why not: images and video need OpenCV
    (video and streams its FFmpeg or GStreamer backend), a camera a video device, the microphone
    sounddevice; text and .wav files need nothing more. Checked without opening any device."""
    import glob
    import sys

    from edgekit.deps import installed

    if name == "mic":
        return (True, "") if installed("sounddevice") else (False, "pip install sounddevice")
    if produces != "image":
        return True, ""
    if not installed("cv2"):
        return False, "pip install opencv-python-headless"
    if name in ("video", "stream"):
        import cv2

        lines = cv2.getBuildInformation().splitlines()
        decoders = ("FFMPEG:", "GStreamer:")
        if not any(line.strip().startswith(decoders) and "YES" in line for line in lines):
            return False, "this OpenCV has no FFmpeg or GStreamer to decode video"
    if name == "camera" and sys.platform.startswith("linux") and not glob.glob("/dev/video*"):
        return False, "no /dev/video* device"
    return True, ""


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
    for name, s in SOURCES.items():
        ok, why = source_works_here(name, s.produces)
        typer.echo(f"  {name:<14} works here: {_mark(ok):<4} {s.description}{f'  ({why})' if why else ''}")
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
            if dist.endswith(("-gpu", "-cpu")):  # variants: shown only when they are the one installed
                continue
            version = "installed" if installed(module) else "not installed"
        typer.echo(f"{dist:<16}{version}")
    if installed("onnxruntime"):
        import onnxruntime as ort

        typer.echo(f"onnxruntime providers: {', '.join(ort.get_available_providers())}")
    from edgekit.runtime.sources.camera import list_cameras

    for tool, why in [("espeak-ng", "synthesising the kws keyword data")]:
        where = shutil.which(tool)
        typer.echo(f"{tool:<16}{where or f'not found (for {why}: apt-get install {tool})'}")
    cams = list_cameras()
    typer.echo(f"cameras         {', '.join(map(str, cams)) if cams else 'none found'}")
    if not installed("ai_edge_litert") and not installed("tflite_runtime"):
        typer.echo("no TFLite interpreter: `pip install 'ai-edge-litert>=1.4,<2'` (Python 3.10-3.12)")
