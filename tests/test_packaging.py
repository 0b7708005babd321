"""A non-editable install: the wheel built from this checkout carries the shipped data and assets,
builds without setuptools' package-data warnings, and works from where pip puts it."""

from __future__ import annotations

import email
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    pytest.importorskip("setuptools")
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: build with this environment's setuptools, no index needed
    proc = _pip("wheel", "-v", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = out.glob("edgekit-*.whl")
    return whl, proc.stdout + proc.stderr


def test_wheel_carries_the_data_files_and_assets(wheel):
    whl, _ = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    for path in [
        "edgekit/runtime/datasets/data/mnist_5k.csv.gz",
        "edgekit/runtime/datasets/data/text_corpus.csv",
        "edgekit/runtime/assets/face_detection_short_range.tflite",
        "edgekit/runtime/assets/face_detection_full_range.tflite",
        "edgekit/runtime/assets/face_detection_front_128x128_barracuda.onnx",
        "edgekit/runtime/assets/LICENSE-mediapipe-blazeface.txt",
        "edgekit/runtime/sources/picam.py",
        "edgekit/runtime/serve/page.html",  # the --serve page, read from the package
        "edgekit/cli/__init__.py",
    ]:
        assert path in names, f"{path} is missing from {whl.name}"
    # every module of the source tree, so a registry package missing from pyproject's list shows here
    # (an editable install would hide it)
    folders = {"edgekit": "edgekit", "runtime": "edgekit/runtime", "models": "edgekit/models", "export": "edgekit/export"}
    missing = [
        f"{installed}/{py.relative_to(ROOT / folder).as_posix()}"
        for folder, installed in folders.items()
        for py in (ROOT / folder).rglob("*.py")
        if f"{installed}/{py.relative_to(ROOT / folder).as_posix()}" not in names
    ]
    assert missing == [], f"modules missing from {whl.name}: {missing}"
    for shipped in (ROOT / "runtime" / "assets").iterdir():
        assert f"edgekit/runtime/assets/{shipped.name}" in names


def test_wheel_builds_without_package_data_warnings(wheel):
    _, log = wheel
    assert "is absent from the `packages` configuration" not in log
    assert "SetuptoolsDeprecationWarning" not in log


def test_wheel_metadata_runtime_install_spans_python_3_10_to_3_13(wheel):
    whl, _ = wheel
    with zipfile.ZipFile(whl) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(meta_name))
    assert meta["Requires-Python"] == ">=3.10"
    requires = meta.get_all("Requires-Dist")
    litert = next(r for r in requires if r.startswith("ai-edge-litert"))
    assert ">=2.1" in litert and "<3" in litert and "python_version" not in litert
    assert not any(r.startswith("tensorflow") and "extra" not in r for r in requires)  # never in the base
    assert any(r.startswith("onnxruntime-gpu[cuda,cudnn]") and 'extra == "gpu"' in r for r in requires)


def test_installed_wheel_finds_its_data_from_site_packages(wheel, tmp_path):
    whl, _ = wheel
    target = tmp_path / "site"
    proc = _pip("install", "-q", "--no-deps", "--no-index", "--target", str(target), str(whl))
    assert proc.returncode == 0, proc.stderr[-3000:]
    code = f"""
import sys
sys.path.insert(0, {str(target)!r})
import edgekit
assert edgekit.__file__.startswith({str(target)!r}), edgekit.__file__
from importlib.resources import files
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.predictor import Predictor
assert (files("edgekit.runtime.assets") / "face_detection_short_range.tflite").is_file()
data = load_dataset("mnist", "shipped")
with Predictor(files("edgekit.runtime.assets") / "face_detection_short_range.tflite") as p:
    print(len(data.heldout.x), p.card.task)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["1000", "detect"]
