"""What `edgekit run` does at every start, kept cheap (bench/startup.py measures it): the TFLite
checks' verdict cache (a start that finds this very file's verdict by its stat skips the digest,
the verifier and the probe; a file rewritten, even with the same bytes, is looked up by its digest;
a changed file is checked again), and the garbage collector off until start-up is over."""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
from pathlib import Path

import pytest

import edgekit.runtime.backends.tflite as tflite_backend
from edgekit.errors import ModelFileError
from edgekit.runtime import tflite_check
from edgekit.runtime.backends import open_model

BLAZEFACE = Path(__file__).resolve().parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A private verdict cache, and the checks each open made, by name."""
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    made: list[str] = []

    def counted(name: str, fn):
        def wrapper(*args, **kwargs):
            made.append(name)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(tflite_backend, "file_digest", counted("digest", tflite_check.file_digest))
    monkeypatch.setattr(tflite_backend, "verify_tflite", counted("verify", tflite_check.verify_tflite))
    monkeypatch.setattr(tflite_check, "_probe", counted("probe", tflite_check._probe))
    return made


def _open(path: Path) -> None:
    with open_model(path, backend="litert"):
        pass


def test_a_known_file_skips_every_check(tmp_path: Path, calls: list[str]) -> None:
    model = tmp_path / "face.tflite"
    shutil.copyfile(BLAZEFACE, model)
    _open(model)
    assert calls == ["digest", "verify", "probe"]
    calls.clear()
    _open(model)
    assert calls == []  # known by its stat: no digest, no verifier, no probe


def test_a_rewritten_file_is_known_by_its_digest(tmp_path: Path, calls: list[str]) -> None:
    model = tmp_path / "face.tflite"
    shutil.copyfile(BLAZEFACE, model)
    _open(model)
    calls.clear()
    model.write_bytes(BLAZEFACE.read_bytes())  # the same bytes, written again: a new ctime
    _open(model)
    assert calls == ["digest"]  # these bytes passed the verifier and the probe before
    calls.clear()
    _open(model)
    assert calls == []


def test_a_changed_file_is_checked_again(tmp_path: Path, calls: list[str]) -> None:
    model = tmp_path / "face.tflite"
    shutil.copyfile(BLAZEFACE, model)
    _open(model)
    calls.clear()
    buf = bytearray(model.read_bytes())
    st = model.stat()
    buf[-1] ^= 0xFF  # a byte of the last buffer (weights): same size, same modification time
    model.write_bytes(bytes(buf))
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns))
    with contextlib.suppress(ModelFileError):  # the probe may refuse it; what matters is that it ran
        _open(model)
    assert calls == ["digest", "verify", "probe"]


def test_a_failed_verdict_is_never_recorded_as_sound(tmp_path: Path, calls: list[str]) -> None:
    model = tmp_path / "face.tflite"
    shutil.copyfile(BLAZEFACE, model)
    digest = tflite_check.file_digest(model.read_bytes())
    record = tflite_check._record(digest, "ai_edge_litert.interpreter")
    record.parent.mkdir(parents=True)
    record.write_text('{"ok": false, "why": "it crashed", "verified": 1}')
    for _ in range(2):
        with pytest.raises(ModelFileError, match="it crashed"):
            _open(model)
    assert not tflite_check.known_sound(model.stat(), "ai_edge_litert.interpreter")


_GC_PROBE = """
import gc, sys
import edgekit.runtime.pipeline as pipeline
import edgekit.runtime.predictor as predictor
seen = {}
opened = predictor.Predictor.__init__
def predictor_init(self, *a, **k):
    seen["opening"] = gc.isenabled()
    opened(self, *a, **k)
predictor.Predictor.__init__ = predictor_init
ran = pipeline.Pipeline.run
def pipeline_run(self):
    seen["running"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
    return ran(self)
pipeline.Pipeline.run = pipeline_run
sys.argv = ["edgekit", "run", sys.argv[1], "--source", sys.argv[2]]
from edgekit.cli import main
try:
    main()
finally:
    print(seen, file=sys.stderr)
"""


def test_the_command_collects_garbage_once_start_up_is_over(tmp_path: Path) -> None:
    """`edgekit run` starts with the collector off (20 ms of its start-up) and turns it on, with
    what start-up made frozen, once the model and the source are open."""
    import subprocess
    import sys

    import cv2
    import numpy as np

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 128, np.uint8))
    proc = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, str(BLAZEFACE), str(photo)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = ast.literal_eval(proc.stderr.strip().splitlines()[-1])  # the dict the probe printed
    assert seen["opening"] is False
    assert seen["running"] is True and seen["frozen"] > 10_000
