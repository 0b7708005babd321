"""A model that gives NaN or inf never has it printed as a result: that input is an error, counted,
and `--json` output stays valid JSON (78 of 400 runs on mutated float files printed
`"score": NaN`, which is not JSON, and exited 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgekit.runtime

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

BLAZEFACE = Path(edgekit.runtime.__file__).parent / "assets" / "face_detection_short_range.tflite"


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory) -> Path:
    """BlazeFace with one backbone kernel (float16, 18,432 bytes) set to NaN: a weight damaged in
    place, the file still sound. BlazeFace has no card, so no digest check stops it first."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    buf = bytearray(BLAZEFACE.read_bytes())
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    tensor = next(t for t in model.subgraphs[0].tensors if t.name == b"conv2d_15/Kernel")
    data = bytes(model.buffers[tensor.buffer].data)
    at = buf.find(data)
    assert at > 0 and buf.find(data, at + 1) < 0
    buf[at : at + len(data)] = np.full(len(data) // 2, np.nan, np.float16).tobytes()
    out = tmp_path_factory.mktemp("nan") / "blazeface_nan.tflite"
    out.write_bytes(bytes(buf))
    return out


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((96, 128, 3), 60 * i, np.uint8))
    return folder


def test_non_finite_outputs_are_an_error_for_that_input(nan_model: Path, photos: Path):
    from edgekit.errors import DataError
    from edgekit.runtime.pipeline import Pipeline
    from edgekit.runtime.predictor import NON_FINITE, Predictor

    with Predictor(nan_model) as predictor:
        outputs = predictor.infer(np.zeros((96, 128, 3), np.uint8))
        assert any(np.isnan(o).any() for o in outputs)  # the damage is real
        with pytest.raises(DataError, match="non-finite"):
            predictor(np.zeros((96, 128, 3), np.uint8))
    got = []
    summary = Pipeline.open(nan_model, str(photos)).run(callback=got.append)
    assert got == [] and summary.processed == 0 and summary.failed == 3 and summary.frames_in == 3
    assert NON_FINITE in summary.failures[0]
    assert "3 failed" in summary.describe() and summary.to_dict()["failed"] == 3


def test_json_run_stays_valid_json_and_fails_when_every_input_failed(nan_model: Path, photos: Path):
    from typer.testing import CliRunner

    from edgekit.cli import app

    result = CliRunner().invoke(app, ["run", str(nan_model), "--source", str(photos), "--json"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # every line is JSON (NaN is not)
    assert docs[-1]["summary"]["failed"] == 3 and docs[-1]["summary"]["processed"] == 0
    assert ": NaN" not in result.stdout


def test_a_sound_model_has_no_failures(photos: Path):
    from edgekit.runtime.pipeline import Pipeline

    summary = Pipeline.open(BLAZEFACE, str(photos)).run()
    assert summary.processed == 3 and summary.failed == 0


def test_non_finite_rows():
    from edgekit.runtime.scoring import non_finite_rows

    a = np.zeros((4, 3), np.float32)
    a[1, 2], a[3, 0] = np.nan, np.inf
    b = np.zeros((4, 2), np.int8)
    assert non_finite_rows([a, b]).tolist() == [False, True, False, True]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64])
def test_the_finite_check_finds_every_nan_and_inf_and_nothing_else(dtype):
    """One NaN or inf anywhere in any float output is found; the largest finite values (whose sum
    would overflow: a check by summing would take them for inf) and integer outputs are not."""
    from edgekit.errors import DataError
    from edgekit.runtime.predictor import check_finite

    big = np.finfo(np.dtype(dtype).type(0).real.dtype).max
    check_finite([np.full((2, 3), big, dtype), np.full((4,), -big, dtype)])  # sums overflow: fine
    check_finite([np.zeros((0, 4), dtype), np.arange(6, dtype=np.int8), np.ones(5, dtype)])
    for bad in (np.nan, np.inf, -np.inf):
        for at in (0, 7, 895):
            out = np.ones((1, 896, 1), dtype)
            out.reshape(-1)[at] = bad
            with pytest.raises(DataError):
                check_finite([np.ones(3, np.float32), out])
    pair = np.array([np.inf, -np.inf], dtype)  # a NaN sum from two infinities, still found
    with pytest.raises(DataError):
        check_finite([pair])
