"""The TFLite checks' verdict cache: a start that finds this very file's verdict (by its stat) skips
the digest, the verifier and the probe; a file rewritten, even with the same bytes, is looked up by
its digest, and a changed file is checked again."""

from __future__ import annotations

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
