"""Hostile and damaged inputs made by hand: each gives one sentence, never a traceback, a hang or a
huge allocation; and what an interrupted write leaves behind is cleaned up."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgekit.card import ModelCard
from edgekit.errors import DataError, ModelFileError


def _card(**changes):
    d = {
        "task": "classify-image",
        "labels": ["a", "b"],
        "input": {"name": "x", "shape": [1, 28, 28, 1], "dtype": "float32", "layout": "NHWC"},
        "output": {"name": "y", "shape": [1, 2], "dtype": "float32", "layout": "NC"},
        "preprocess": {"kind": "image", "size": [28, 28], "channels": 1, "scale": 1 / 255, "offset": 0.0},
        "schema_version": 1,
    }
    d.update(changes)
    return d


@pytest.mark.runtime_only
def test_a_deeply_nested_card_is_refused_in_one_sentence():
    with pytest.raises(ModelFileError, match="nested more than 32 levels"):
        ModelCard.from_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested more than 32 levels"):
        ModelCard.from_json(json.dumps(_card(hparams=json.loads('{"a":' * 40 + "1" + "}" * 40))))


@pytest.mark.parametrize(
    ("size", "message"),
    [([-28, 28], "sides from 1"), ([784, 1], "says 784x1x1 images, but the card's input is"), ("28", "")],
)
@pytest.mark.runtime_only
def test_card_image_size_is_checked_against_the_input(size, message):
    pre = {"kind": "image", "size": size, "channels": 1}
    with pytest.raises(ModelFileError, match=message or "preprocess.size"):
        ModelCard.from_dict(_card(preprocess=pre))
    assert ModelCard.from_dict(_card()).preprocess["size"] == [28, 28]


@pytest.mark.runtime_only
def test_card_data_reference_stays_inside_the_model_folder(tmp_path):
    from edgekit.benchmark.measure import heldout_for
    from edgekit.evaluate_file import card_dataset

    model = tmp_path / "m.tflite"
    for source in ("/etc/passwd", "/", "../outside.csv"):
        card = ModelCard.from_dict(_card(dataset={"name": "mnist", "source": source}))
        with pytest.raises(DataError, match="outside the model's folder: pass --data") as e:
            card_dataset(card, model, None)
        assert "root:" not in str(e.value)
        assert heldout_for(card, None, 5, model) is None
        assert card_dataset(card, model, "shipped") == ("mnist", "shipped")  # the user's word goes
    keras = ModelCard.from_dict(_card(dataset={"name": "mnist", "source": "keras"}))
    assert card_dataset(keras, model, None) == ("mnist", "auto")  # a card never downloads
    inside = ModelCard.from_dict(_card(dataset={"name": "mnist", "source": "data/d.csv"}))
    assert card_dataset(inside, model, None) == ("mnist", str(tmp_path.resolve() / "data/d.csv"))


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.runtime_only
def test_images_over_the_pixel_limit_fifos_and_bad_frames(tmp_path):
    import cv2

    from edgekit.errors import SourceError
    from edgekit.runtime.sources import open_source
    from edgekit.runtime.sources.files import image_size, read_image

    big = tmp_path / "big.png"
    big.write_bytes(_png_header(100_000, 100_000) + b"\0" * 64)
    with pytest.raises(DataError, match="claims 100000x100000 pixels, more than the limit"):
        read_image(big)
    ok = tmp_path / "ok.jpg"
    cv2.imwrite(str(ok), np.zeros((30, 40, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "ok.bmp"), np.zeros((30, 40, 3), np.uint8))
    assert image_size(ok.read_bytes()) == (40, 30) == image_size((tmp_path / "ok.bmp").read_bytes())
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="not a regular file"):
        open_source(str(fifo))
    assert time.monotonic() - t0 < 5
    source = open_source(str(tmp_path / "*.*"))
    items = list(source)
    assert len(items) == 2 and source.skipped == 2  # big.png and the FIFO skipped, counted; the run goes on


@pytest.mark.runtime_only
def test_hostile_wav_headers_are_refused(tmp_path):
    from edgekit.runtime.audio import read_wav, write_wav

    good = write_wav(tmp_path / "ok.wav", np.zeros(1600, np.float32), 16000).read_bytes()
    cases = {"rate.wav": (24, 4294967295, "4294967295 Hz is outside"), "slow.wav": (24, 4, "4 Hz"),
             "fmt.wav": (16, 0x7FFFFFFF, "fmt chunk claims 2147483647 bytes")}  # fmt: skip
    for name, (at, value, message) in cases.items():
        data = bytearray(good)
        data[at : at + 4] = struct.pack("<I", value)
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message):
            read_wav(tmp_path / name)


@pytest.mark.runtime_only
def test_labels_with_escape_codes_are_printed_escaped():
    from edgekit.cli.info import printable

    assert printable("cat\x1b[2J\nrow: forged") == "cat\\x1b[2J\\nrow: forged"
    assert printable("猫 é") == "猫 é"


def test_a_damaged_tflite_is_refused_before_the_interpreter(artifacts):
    from edgekit.runtime.tflite_check import verify_tflite

    data = artifacts[("tflite", "int8")].read_bytes()
    verify_tflite(data)
    for bad in (data[:5000], data[:4] + data[4:8] + b"\xff" * 64 + data[72:]):
        with pytest.raises(ModelFileError, match="damaged TFLite model"):
            verify_tflite(bad)


@pytest.mark.runtime_only
def test_a_saved_model_is_refused_without_unsafe(tmp_path):
    from edgekit.errors import UnsupportedError
    from edgekit.export.source import ExportSource

    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(UnsupportedError, match="is a program .* pass --unsafe"):
        _ = ExportSource.open(tmp_path / "sm").model


@pytest.mark.runtime_only
def test_part_files_are_removed_on_sigterm_and_stale_ones_on_the_next_write(tmp_path):
    target = tmp_path / "model.bin"
    code = f"""
import time
from pathlib import Path
from edgekit.fileio import atomic_path
with atomic_path(Path({str(target)!r})) as tmp:
    tmp.write_bytes(b"half")
    print("writing", flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert list(tmp_path.glob(".model.bin.*.part"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    assert not list(tmp_path.glob(".model.bin.*.part")) and not target.exists()
    # a writer killed outright (SIGKILL) leaves its part: the next write to the target removes it
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait(30)
    (stale,) = tmp_path.glob(".model.bin.*.part")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    from edgekit.fileio import write_bytes

    write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole" and not list(tmp_path.glob(".model.bin.*.part"))


@pytest.mark.runtime_only
def test_onnx_metadata_that_is_not_utf8_is_refused_in_one_sentence(tmp_path):
    """Found by the long fuzz pass: onnxruntime raised UnicodeDecodeError reading such metadata."""
    onnx = pytest.importorskip("onnx")

    import edgekit.runtime
    from edgekit.runtime.files import ModelFile

    shipped = Path(edgekit.runtime.__file__).parent / "assets" / "face_detection_front_128x128_barracuda.onnx"
    model = onnx.load(str(shipped))
    model.metadata_props.add(key="zz", value="QQQQ")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(model.SerializeToString().replace(b"QQQQ", b"\xff\xfe\xfd\xfc"))
    with pytest.raises(ModelFileError, match="metadata is not valid UTF-8"):
        _ = ModelFile.open(bad).card


@pytest.mark.runtime_only
def test_an_initializer_that_disagrees_with_its_shape_is_one_line_on_stderr(tmp_path, capfd):
    """Found by the long fuzz pass: onnxruntime logged the load's error itself (a C++ signature,
    two lines) before raising it; now the one sentence is all the user sees."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    constant = onnx.TensorProto(name="c", data_type=onnx.TensorProto.FLOAT, dims=[1], float_data=[1.0, 2.0])
    graph = h.make_graph(
        [h.make_node("Add", ["x", "c"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
        initializer=[constant],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(model.SerializeToString())

    from edgekit.runtime.backends import SessionOptions
    from edgekit.runtime.backends.onnxruntime import _session

    with pytest.raises(ModelFileError, match="is not a valid ONNX model: ") as e:
        _session(bad, SessionOptions(device="cpu"))
    assert "[ONNXRuntimeError]" not in str(e.value) and "\n" not in str(e.value)
    assert capfd.readouterr().err == ""
