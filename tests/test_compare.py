"""`edgekit compare`: result files made by real runs merged into one table, a row missing on one
host shown as such, Markdown, and a chart that decodes as an image of the size asked for."""

from __future__ import annotations

import json

import pytest
from tensor_fixtures import make_tensor_models
from typer.testing import CliRunner

from edgekit.benchmark.compare import chart_size, compare_files
from edgekit.benchmark.results import save_json
from edgekit.benchmark.runner import Benchmark, BenchSettings
from edgekit.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    files = make_tensor_models(root / "m")
    # "host a" measured both files, "host b" only the ONNX one (its TFLite row is missing)
    settings = BenchSettings(runs=20, threads=(1,))
    a = Benchmark([files["tflite"], files["onnx"]], settings).run().rows
    b = Benchmark([files["onnx"]], settings).run().rows
    pa = save_json(a, root / "a.json", host={"hostname": "host-a", "cpu": {}})
    pb = save_json(b, root / "b.json", host={"hostname": "host-b", "cpu": {}})
    return pa, pb


def test_rows_missing_on_one_host_are_shown(results):
    c = compare_files(results)
    assert c.hosts == ["host-a", "host-b"] and len(c.keys) == 2
    r = invoke("compare", *results)
    assert r.exit_code == 0, r.output
    tflite_line = next(line for line in r.stdout.splitlines() if "net.tflite" in line)
    assert "missing" in tflite_line
    r = invoke("compare", *results, "--markdown", "--baseline", "net.onnx")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("| row |") and "(1.00x)" in r.stdout


def test_the_chart_is_a_png_of_the_expected_size(results, tmp_path):
    import cv2

    out = tmp_path / "chart.png"
    r = invoke("compare", *results, "--plot", out)
    assert r.exit_code == 0, r.output
    image = cv2.imread(str(out))
    assert image is not None and image.std() > 0
    width, height = chart_size(compare_files(results))
    assert image.shape == (height, width, 3)


def test_bad_result_files_are_one_sentence(results, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "edgekit-bench", "schema_version": 7, "results": []}))
    r = invoke("compare", results[0], other)
    assert r.exit_code == 1 and "version 7" in r.output and "Traceback" not in r.output
    r = invoke("compare", results[0], "--baseline", "nothing-like-this")
    assert r.exit_code == 1 and "names no row" in r.output


def test_a_row_the_test_cannot_tell_from_the_baseline_is_marked(results, tmp_path):
    from edgekit.benchmark.results import load_result

    a = load_result(results[0])
    # the same per-run times under another host's name: p = 1, shown as ≈; the other file differs
    twin = save_json(a.rows, tmp_path / "twin.json", host={"hostname": "host-c", "cpu": {}})
    r = invoke("compare", results[0], twin, "--baseline", "net.onnx")
    assert r.exit_code == 0, r.output
    onnx_line = next(line for line in r.stdout.splitlines() if line.startswith("net.onnx"))
    assert "(1.00x)" in onnx_line and "(≈1.00x)" in onnx_line
    assert "Mann-Whitney" in r.stdout
