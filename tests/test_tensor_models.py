"""Any model file, card or not: a TFLite converter file and a tf2onnx file with no edgekit card are
shown (`info`), run (`--source x.npy`, `--save out.npz`) and benched as tensor models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensor_fixtures import make_tensor_models
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.predictor import Predictor

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_tensor_models(tmp_path_factory.mktemp("tensor"))


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_a_file_with_no_card_runs_as_tensors(files, fmt):
    with Predictor(files[fmt]) as p:
        assert p.card.task == "tensor" and "inferred_from" in p.card.postprocess
        x = p.task.blank_input()
        assert [a.shape for a in x] == [(1, 8)] and x[0].dtype == np.float32 and x[0].std() > 0
        out = p(x[0]).results
        assert len(out) == 1 and out[0].value.shape == (1, 4)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_info_shows_the_inferred_card_and_tensors(files, fmt):
    r = invoke("info", files[fmt])
    assert r.exit_code == 0, r.output
    assert "inferred by edgekit" in r.stdout and "tensor" in r.stdout
    assert "tensor in" in r.stdout and "float32" in r.stdout and "ops" in r.stdout


def test_run_from_npy_and_npz_saves_outputs(files, tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    r = invoke("run", files["onnx"], "--source", tmp_path / "x.npy", "--save", out)
    assert r.exit_code == 0, r.output
    assert "[1, 4] float32" in r.stdout and f"saved {out} (" in r.stderr
    with Predictor(files["onnx"]) as p:
        want = p.infer(x)[0]
    saved = np.load(out)
    assert list(saved) and np.allclose(saved[next(iter(saved))], want)
    # an .npz names its arrays by input; the TFLite file gives the same numbers within float error
    np.savez(tmp_path / "x.npz", x=x)
    r = invoke("run", files["tflite"], "--source", tmp_path / "x.npz", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["results"][0]["shape"] == [1, 4]


def test_bench_times_a_model_with_no_card(files, tmp_path):
    r = invoke("bench", files["tflite"], files["onnx"], "--runs", "20", "--no-save", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    rows = doc["results"]
    assert [row["backend"] for row in rows] == ["litert", "onnxruntime"]
    assert all(row["task"] == "tensor" and row["metric"] is None and row["p50_ms"] > 0 for row in rows)
    assert all(row["error"] is None and row["runs"] == 20 for row in rows)


def test_a_shape_that_does_not_fit_is_one_sentence(files):
    r = invoke("bench", files["onnx"], "--shape", "x=1x9", "--runs", "5", "--no-save")
    assert r.exit_code == 1
    assert "does not fit the input x" in r.output and "Traceback" not in r.output
