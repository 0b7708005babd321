"""Shared fixtures: one tiny real training run and its real exports, made once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.fileio import temp_dir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# never reach for a dataset download from a test: the shipped digits are the default data
# (an empty Keras home: no cached full MNIST, and Keras writes its keras.json there, not in ~);
# removed when the session ends, and by the next edgekit to start if the session was killed
os.environ["KERAS_HOME"] = str(temp_dir("keras-home"))


def _every_target() -> list[tuple[str, str]]:
    from edgekit.export.base import targets

    return [(t.format, t.quantization.value) for t in targets()]


# every (format, mode) the export registry holds: the tests parametrise over it
ARTIFACTS = _every_target()


@pytest.fixture(scope="session")
def mnist():
    from edgekit.runtime.datasets import load_dataset

    return load_dataset("mnist", "shipped")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """mnist-cnn trained for 2 epochs on 1,000 shipped digits: enough to classify well above chance."""
    from edgekit.models.train import train

    out = tmp_path_factory.mktemp("mnist-cnn")
    train("mnist-cnn", out, data="shipped", epochs=2, limit=1000, quiet=True)
    return out / "model.keras"


@pytest.fixture(scope="session")
def artifacts(trained: Path) -> dict[tuple[str, str], Path]:
    """Every format and mode, made the way a user makes them: `edgekit export MODEL --to all`."""
    from typer.testing import CliRunner

    from edgekit.cli import app
    from edgekit.export.base import Quantization, get_exporter

    result = CliRunner().invoke(app, ["export", str(trained), "--to", "all"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{len(ARTIFACTS)} of {len(ARTIFACTS)} artifacts written" in result.stderr
    return {(f, q): get_exporter(f).default_path(trained, Quantization(q)) for f, q in ARTIFACTS}


@pytest.fixture()
def digit_pngs(tmp_path: Path, mnist) -> tuple[Path, list[int]]:
    """Eight real held-out digits written as PNG files, with their labels."""
    import cv2

    folder = tmp_path / "digits"
    folder.mkdir()
    labels = []
    for i in range(8):
        cv2.imwrite(str(folder / f"digit_{i}.png"), mnist.heldout.x[i * 100 + 3])
        labels.append(int(mnist.heldout.y[i * 100 + 3]))
    return folder, labels


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (for checks that need a clean sys.modules)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def make_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for f in frames:
        writer.write(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path
