"""Every artifact: converted for real, card inside, validated against Keras, run with no TensorFlow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ARTIFACTS, run_python

from edgekit.card import ModelCard
from edgekit.errors import ConfigError, VerificationError
from edgekit.runtime.files import read_card


@pytest.mark.parametrize(("fmt", "q"), ARTIFACTS)
def test_artifact_holds_its_card_and_agrees_with_keras(artifacts, trained, fmt, q):
    path = artifacts[(fmt, q)]
    card = read_card(path)
    original = ModelCard.load(trained.parent / "card.json")
    assert card.format == fmt and card.quantization == q
    assert card.weights_sha256 == original.weights_sha256 and card.recipe == "mnist-cnn"
    assert ModelCard.from_json(card.to_json()) == card
    report = card.parity
    assert report["passed"] and report["samples"] == 1000
    if q == "fp32":
        assert report["max_abs_diff"] <= 1e-4 and report["top1_agreement"] == 1.0
    elif q == "fp16":
        assert report["max_abs_diff"] <= 1e-2 and report["top1_agreement"] >= 0.99
        assert path.stat().st_size < 0.6 * artifacts[(fmt, "fp32")].stat().st_size
    else:
        assert report["accuracy_delta_points"] >= -1.0 and report["top1_agreement"] > 0.97
    if (fmt, q) == ("tflite", "int8"):
        assert card.io_quantization["input"]["dtype"] == "int8"
        assert path.stat().st_size < 0.3 * artifacts[("tflite", "fp32")].stat().st_size


@pytest.mark.parametrize(("fmt", "q"), ARTIFACTS)
def test_artifact_runs_in_a_process_without_tensorflow(artifacts, mnist, fmt, q):
    path = artifacts[(fmt, q)]
    code = f"""
import sys, json
import numpy as np
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.predictor import Predictor
from edgekit.runtime.scoring import evaluate
ds = load_dataset("mnist", "shipped")
with Predictor({str(path)!r}) as p:
    acc = evaluate(p, ds.heldout.x, ds.heldout.y)["metrics"]["accuracy"]
heavy = [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules]
print(json.dumps({{"accuracy": acc, "heavy": heavy}}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert out["accuracy"] == pytest.approx(read_card(path).parity["accuracy"])


def test_unknown_mode_is_refused_before_tensorflow_is_imported(trained):
    code = f"""
import sys
from edgekit.errors import ConfigError
from edgekit.export.api import plan_export
try:
    plan_export({str(trained)!r}, "tflite", "int4")
except ConfigError as e:
    print(e)
print("tensorflow" in sys.modules)
"""
    proc = run_python(code)
    assert proc.stdout.splitlines() == [
        "unknown quantization 'int4': use one of fp32, fp16, dynamic, int8",
        "False",
    ]


def test_onnx_graph_is_simplified_unless_asked_not_to_with_the_opset_asked_for(trained, tmp_path):
    """onnxslim folds the Shape/Gather/Concat chain tf2onnx writes for the Flatten's reshape; the
    outputs stay the ones validated against Keras."""
    import onnx

    from edgekit.export.api import export_model, plan_export

    plain = export_model(
        trained, plan_export(trained, "onnx", "fp32", out=tmp_path / "p.onnx", simplify=False)
    )
    slim = export_model(trained, plan_export(trained, "onnx", "fp32", out=tmp_path / "s.onnx", opset=13))
    nodes = {r.path.name: onnx.load(str(r.path)).graph for r in (plain, slim)}
    assert len(nodes["s.onnx"].node) < len(nodes["p.onnx"].node)
    assert {"Shape", "Gather", "Concat"} & {n.op_type for n in nodes["p.onnx"].node}
    assert not {"Shape", "Gather", "Concat"} & {n.op_type for n in nodes["s.onnx"].node}
    assert slim.report["max_abs_diff"] <= 1e-4 and slim.report["top1_agreement"] == 1.0
    assert [o.version for o in onnx.load(str(slim.path)).opset_import if o.domain in ("", "ai.onnx")] == [13]


def test_report_file_holds_the_parity_report_also_of_a_rejected_file(trained, tmp_path):
    from typer.testing import CliRunner

    from edgekit.cli import app

    report = tmp_path / "r.json"
    args = ["export", str(trained), "--to", "tflite", "--quantize", "int8", "--report", str(report)]
    # one calibration sample clips most activations, and no drop at all is allowed: rejected
    bar = ["--calib-samples", "1", "--max-drop", "0"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "m.tflite"), *bar])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (entry,) = json.loads(report.read_text())["artifacts"]
    assert not entry["written"] and entry["path"].endswith("m.tflite.rejected")
    assert entry["report"]["failures"] and not entry["report"]["passed"]
    assert (tmp_path / "m.tflite.rejected").stat().st_size == entry["size_bytes"]
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"io": "int16"}, "unknown --io 'int16'"),
        ({"calib_method": "magic"}, "unknown --calib-method 'magic'"),
        ({"batch": "8"}, "--batch must be 1 or dynamic"),
        ({"calib_samples": 0}, "--calib-samples must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_any_work(trained, tmp_path, option, message):
    from edgekit.export.api import plan_export

    with pytest.raises(ConfigError, match=message):
        plan_export(trained, "tflite", "int8", out=tmp_path / "x.tflite", **option)


def test_uint8_io_and_entropy_calibration(trained, tmp_path):
    from edgekit.export.api import export_model, plan_export

    u8 = export_model(trained, plan_export(trained, "tflite", "int8", out=tmp_path / "u8.tflite", io="uint8"))
    assert u8.card.io_quantization["input"] == {
        "scale": pytest.approx(1 / 255),
        "zero_point": 0,
        "dtype": "uint8",
    }
    assert u8.report["passed"]
    ent = export_model(
        trained, plan_export(trained, "onnx", "int8", out=tmp_path / "e.onnx", calib_method="entropy")
    )
    assert ent.report["passed"] and ent.report["top1_agreement"] > 0.97


def test_op_report_lists_builtin_ops_and_finds_no_flex(artifacts):
    from edgekit.runtime.files import ModelFile

    tfl = ModelFile.open(artifacts[("tflite", "int8")]).ops
    assert {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"} <= set(tfl.ops) and tfl.portable
    assert tfl.ops["CONV_2D"] == 2
    onnx = ModelFile.open(artifacts[("onnx", "int8")]).ops
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= set(onnx.ops) and onnx.portable


def test_existing_file_is_kept_without_force(artifacts, trained):
    from edgekit.export.api import plan_export

    path = artifacts[("tflite", "fp32")]
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists: pass --force"):
        plan_export(trained, "tflite", "fp32")
    assert path.read_bytes() == before


def test_a_result_that_misses_its_bar_is_written_aside_not_in_place(artifacts, trained, tmp_path):
    from edgekit.export.api import export_model, plan_export

    target = tmp_path / "m_int8.tflite"
    good = artifacts[("tflite", "int8")].read_bytes()
    target.write_bytes(good)
    # demand that int8 *gain* 50 points: impossible, so it must be rejected
    options = plan_export(trained, "tflite", "int8", out=target, force=True, max_drop=-50.0)
    with pytest.raises(VerificationError, match=r"accuracy drop .* points > -50.*rejected"):
        export_model(trained, options)
    assert target.read_bytes() == good
    assert (tmp_path / "m_int8.tflite.rejected").exists()


def test_an_export_killed_midway_leaves_the_earlier_file_untouched(artifacts, trained, tmp_path):
    """Kill `edgekit export --force` at several moments: the target is always either the earlier file,
    byte for byte, or a complete new model, never a partial one."""
    target = tmp_path / "model.onnx"
    good = artifacts[("onnx", "fp32")].read_bytes()
    cmd = [
        sys.executable,
        "-m",
        "edgekit.cli",
        "export",
        str(trained),
        "--to",
        "onnx",
        "--out",
        str(target),
        "--force",
    ]
    outcomes = []
    for delay in (1.0, 2.5, 4.0, 6.0):
        target.write_bytes(good)
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        data = target.read_bytes()
        if data == good:
            outcomes.append("earlier")
        else:
            assert read_card(target).parity["passed"], "a replaced file must be a complete, validated model"
            outcomes.append("new")
    assert (
        "earlier" in outcomes
    )  # at least one kill landed mid-export (TensorFlow alone takes seconds to import)


def test_int8_input_quantization_is_exact_for_pixels(artifacts):
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.preprocess import normalize

    with Predictor(artifacts[("tflite", "int8")]) as p:
        scale, zero = p.session.inputs[0].quant
        pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        spec = p.task.spec
        # the normalised pixels, as the task hands them to the model (after MNIST's centring)
        x = normalize(np.pad(pixels, ((6, 6), (6, 6)))[None, ..., None], spec)
        codes = p.task.feed(x)
        # x = p / 255 quantized with scale 1/255, zero point -128: every pixel keeps its own code
        assert codes.dtype == np.int8 and spec.size == (28, 28)
        assert scale == pytest.approx(1 / 255) and zero == -128
        assert np.array_equal(codes[0, 6:22, 6:22, 0].astype(int) + 128, pixels.astype(int))
