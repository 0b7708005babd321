"""The GPU path (`-m gpu`, run by bench/gpu_check.sh on a lent GPU machine; deselected elsewhere).

Nothing here needs TensorFlow, which the GPU machine lacks: the models are ONNX graphs built with
the onnx package, as a file made by any exporter would be."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensor_fixtures import onnx_model_bytes
from typer.testing import CliRunner

from edgekit.cli import app

pytestmark = pytest.mark.gpu
runner = CliRunner()


def dense_onnx(path, batch: int | str = 1):
    """x (batch, 8) -> MatMul -> Add -> Relu -> y (batch, 4); `batch` a name makes it dynamic."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4])],
        initializer=[w, b],
    )
    path.write_bytes(onnx_model_bytes(graph))
    return path


def test_cuda_io_binding_and_graph_agree_with_the_cpu(tmp_path):
    """A fixed-shape file on CUDA: IO binding and a CUDA graph, the CPU's outputs, and the provider
    that ran reported."""
    from edgekit.runtime.backends import open_model

    path = dense_onnx(tmp_path / "fixed.onnx")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 8)).astype(np.float32)
    with open_model(path, device="cpu") as cpu, open_model(path, device="cuda") as gpu:
        assert gpu.providers[0] == "CUDAExecutionProvider" and gpu.io_binding and gpu.cuda_graph
        want = cpu.run([x])[0]
        for _ in range(3):  # the first run captures the graph, the next ones replay it
            assert np.allclose(gpu.run([x])[0], want, atol=1e-4)
        y = x * 2  # new values through the same bound buffer
        assert np.allclose(gpu.run([y])[0], cpu.run([y])[0], atol=1e-4)


def test_a_dynamic_batch_file_gets_its_batch_fixed_and_the_graph(tmp_path):
    """Every file edgekit exports has a free batch: on CUDA it is fixed at 1 per session (onnxruntime's
    free-dimension override), which buys the CUDA graph; another batch makes the session again, with
    a graph for it (DESIGN.md: 0.78 ms with the batch free against 0.355 ms fixed, on an H200)."""
    from edgekit.runtime.backends import open_model

    path = dense_onnx(tmp_path / "dyn.onnx", batch="n")
    rng = np.random.default_rng(2)
    with open_model(path, device="cpu") as cpu, open_model(path, device="cuda") as gpu:
        assert gpu.io_binding and gpu.cuda_graph and gpu.fixed_batch == 1, gpu.notes
        assert gpu.inputs[0].shape == (1, 8)
        assert any("batch fixed at 1 for the CUDA graph" in n for n in gpu.notes), gpu.notes
        for n in (1, 5, 5, 2):  # a new batch: a new session with the graph for it
            x = rng.uniform(-1, 1, (n, 8)).astype(np.float32)
            for _ in range(3):  # captured on an early run, replayed after
                got = gpu.run([x])[0]
            assert gpu.fixed_batch == n and gpu.cuda_graph
            # a batch above 1 is a GEMM, in TF32 on the CUDA provider by default (`use_tf32`): ~1e-3
            assert got.shape == (n, 4) and np.allclose(got, cpu.run([x])[0], rtol=5e-3, atol=5e-3)
        assert any("made again for a batch of 2 (was 5)" in n for n in gpu.notes), gpu.notes


def test_binding_alone_where_the_graph_is_not_wanted_or_other_shapes_are_free(tmp_path):
    """`cuda_graph=False` (what bench/gpu_modes.py measures the graph against) and a file whose
    other dimensions are free: IO binding following the shapes, no batch fixed, and a note why."""
    from onnx import TensorProto, helper

    from edgekit.runtime.backends import BACKENDS, SessionOptions
    from edgekit.runtime.files import ModelFile

    onnx_ = BACKENDS.get("onnxruntime")
    dyn = dense_onnx(tmp_path / "dyn.onnx", batch="n")
    free = tmp_path / "free.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c"])],
    )
    free.write_bytes(onnx_model_bytes(graph))
    rng = np.random.default_rng(4)
    with onnx_.open(ModelFile.open(dyn), SessionOptions(device="cuda", cuda_graph=False)) as s:
        assert s.io_binding and not s.cuda_graph and s.fixed_batch is None
        assert any("not asked for" in n for n in s.notes), s.notes
        for n in (1, 3):
            assert s.run([rng.uniform(-1, 1, (n, 8)).astype(np.float32)])[0].shape == (n, 4)
    with onnx_.open(ModelFile.open(free), SessionOptions(device="cuda")) as s:
        assert s.io_binding and not s.cuda_graph and s.fixed_batch is None
        assert any(n.startswith("no CUDA graph") for n in s.notes), s.notes
        for shape in ((1, 3), (2, 7)):
            x = rng.uniform(-1, 1, shape).astype(np.float32)
            assert np.array_equal(s.run([x])[0], np.maximum(x, 0))


def test_a_node_with_no_cuda_kernel_runs_without_a_graph_and_says_why(tmp_path):
    """ConvInteger has no CUDA kernel: it runs on the CPU, which rules a CUDA graph out (onnxruntime
    refuses such a session). The file still opens and runs, with IO binding, and says why."""
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.runtime.backends import open_model

    w = numpy_helper.from_array(np.arange(9, dtype=np.uint8).reshape(1, 1, 3, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("ConvInteger", ["x", "w"], ["c"]), helper.make_node("Cast", ["c"], ["y"], to=1)],
        "conv_integer",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])],
        initializer=[w],
    )
    path = tmp_path / "conv_integer.onnx"
    path.write_bytes(onnx_model_bytes(graph))
    x = np.random.default_rng(3).integers(0, 255, (1, 1, 5, 5), dtype=np.uint8)
    with open_model(path, device="cpu") as cpu, open_model(path, device="cuda") as gpu:
        assert gpu.io_binding and not gpu.cuda_graph
        assert any(n.startswith("no CUDA graph") for n in gpu.notes), gpu.notes
        assert np.array_equal(gpu.run([x])[0], cpu.run([x])[0])


def test_tensorrt_runs_or_says_plainly_that_it_did_not(tmp_path, capfd):
    from edgekit.runtime.backends import open_model

    path = dense_onnx(tmp_path / "fixed.onnx")
    with open_model(path, device="tensorrt") as s:
        # onnxruntime's fallback prints "EP Error ..." on stdout, which belongs to --json results
        assert "EP Error" not in capfd.readouterr().out
        if s.providers[0] != "TensorrtExecutionProvider":
            assert any("TensorRT" in n and "did not load" in n for n in s.notes), s.notes
            assert s.providers[0] == "CUDAExecutionProvider"
            assert s.cuda_graph  # the CUDA provider's options survive TensorRT's absence


def test_bench_fixes_a_dynamic_batch_at_the_rows_batch(tmp_path):
    path = dense_onnx(tmp_path / "dyn.onnx", batch="n")
    r = runner.invoke(
        app,
        ["bench", str(path), "--device", "cuda", "--batch", "1,4", "--max-time", "1", "--no-save", "--json"],
    )
    assert r.exit_code == 0, r.output
    rows = {row["batch"]: row for row in json.loads(r.stdout)["results"]}
    for batch, row in rows.items():
        ran = row["extra"]["execution"]
        assert row["error"] is None and ran["cuda_graph"] and ran["batch_fixed"] == batch, ran


def test_an_int8_profile_on_cuda_says_where_each_node_ran(tmp_path):
    """What the int8 verdict reads on a GPU (tests/test_gpu_paths.py builds rows of this shape):
    profile rows with the provider each node ran on, (de)quantize nodes on CUDA."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32 = dense_onnx(tmp_path / "net.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(5)
            self.it = iter([{"x": rng.uniform(-1, 1, (1, 8)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    int8 = tmp_path / "net_int8.onnx"
    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)  # fmt: skip
    r = runner.invoke(
        app,
        [
            "bench",
            str(fp32),
            str(int8),
            "--device",
            "cuda",
            "--profile",
            "--max-time",
            "1",
            "--no-save",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = {row["quantization"]: row for row in json.loads(r.stdout)["results"]}
    ops = rows["int8"]["extra"]["profile"]["ops"]
    assert {o["provider"] for o in ops} <= {"CUDA", "CPU"}, ops
    assert any(o["op"] == "DequantizeLinear" and o["provider"] == "CUDA" for o in ops), ops


def test_tensorrt_engines_are_cached_where_tensorrt_runs(tmp_path, monkeypatch):
    from edgekit.runtime.backends import open_model

    monkeypatch.setenv("EDGEKIT_TRT_CACHE", str(tmp_path / "engines"))
    path = dense_onnx(tmp_path / "fixed.onnx")
    with open_model(path, device="tensorrt") as first:
        if first.providers[0] != "TensorrtExecutionProvider":
            pytest.skip(f"TensorRT does not run here: {first.notes}")
        assert first.execution["tensorrt"]["engine"] == "built", first.execution
    with open_model(path, device="tensorrt") as again:  # a second start loads what the first built
        assert again.execution["tensorrt"]["engine"] == "loaded from the cache", again.execution


def test_bench_reports_what_ran_on_each_device(tmp_path):
    path = dense_onnx(tmp_path / "fixed.onnx")
    r = runner.invoke(
        app, ["bench", str(path), "--device", "cuda,cpu", "--max-time", "1", "--no-save", "--json"]
    )
    assert r.exit_code == 0, r.output
    rows = {row["device"]: row for row in json.loads(r.stdout)["results"]}
    assert set(rows) == {"cuda", "cpu"}
    ran = rows["cuda"]["extra"]["execution"]
    assert ran["providers"][0] == "CUDAExecutionProvider" and ran["io_binding"] and ran["cuda_graph"]
    assert rows["cpu"]["extra"]["execution"]["providers"][0] == "CPUExecutionProvider"
    assert all(row["error"] is None and row["p50_ms"] > 0 for row in rows.values())
