"""The parts of the GPU path that run without a GPU, for real, in the default suite:

- a dynamic-batch ONNX file opened with its batch fixed (onnxruntime's free-dimension override, the
  mechanism that gives such a file the CUDA graph) on the CPU provider: static shapes, the same
  outputs, another batch refused by `run` and taken by `resize`; the CPU's default left as it was;
- TensorRT's libraries: the provider library's ELF dependencies read as `readelf -d` reads them, and
  `edgekit doctor` and the ONNX backend naming the library that is missing or of another major
  version, with stand-in libraries compiled here by gcc on the loader's path of a child process;
- the bench's verdict on int8 on CUDA, on rows whose profiles have the shape `profile_onnx` gives
  on a CUDA session (see `cuda_profile`), and on a real QDQ file's operators.

The GPU runs themselves are in tests/test_gpu.py (`-m gpu`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from tensor_fixtures import onnx_model_bytes

from edgekit.benchmark.results import BenchRow
from edgekit.benchmark.verdict import verdict
from edgekit.errors import ConfigError, UnsupportedError
from edgekit.runtime.backends import BACKENDS, SessionOptions, open_model
from edgekit.runtime.files import ModelFile

pytestmark = pytest.mark.runtime_only
EDGEKIT = [
    sys.executable,
    "-c",
    "import sys; from edgekit.cli import main; sys.argv[0] = 'edgekit'; sys.exit(main())",
]


def dense_onnx(path: Path, batch: int | str = "unk__44") -> Path:
    """x (batch, 8) -> MatMul -> Add -> Relu -> y (batch, 4). A named batch is free, as tf2onnx
    names it in every file edgekit exports (`unk__44` in, another `unk__` out)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    out = f"{batch}_out" if isinstance(batch, str) else batch
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["a"]),
            helper.make_node("Relu", ["a"], ["y"]),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [out, 4])],
        initializer=[w, b],
    )
    path.write_bytes(onnx_model_bytes(graph))
    return path


def open_fixed(path: Path, batch: int):
    return BACKENDS.get("onnxruntime").open(ModelFile.open(path), SessionOptions(device="cpu", batch=batch))


# -- the batch fixed per session ---------------------------------------------------------------


def test_a_dynamic_batch_file_with_its_batch_fixed_is_static_and_agrees(tmp_path):
    path = dense_onnx(tmp_path / "dyn.onnx")
    rng = np.random.default_rng(1)
    with open_model(path, device="cpu") as free, open_fixed(path, 4) as fixed:
        assert free.inputs[0].shape == (None, 8) and free.fixed_batch is None
        assert fixed.inputs[0].shape == (4, 8) and fixed.outputs[0].shape == (4, 4)
        ran = fixed.execution
        assert ran["batch_fixed"] == 4 and ran["providers"] == ["CPUExecutionProvider"]
        assert any("batch fixed at 4" in n and "unk__44" in n for n in ran["notes"]), ran["notes"]
        x = rng.uniform(-1, 1, (4, 8)).astype(np.float32)
        assert np.array_equal(fixed.run([x])[0], free.run([x])[0])
        # the batch the caller fixed is not changed behind its back by a run ...
        with pytest.raises(UnsupportedError, match="fixed at 4: it cannot take a batch of 2"):
            fixed.run([x[:2]])
        # ... but `resize` says the batch changes on purpose: the session is made again for it
        fixed.resize([(2, 8)])
        assert fixed.inputs[0].shape == (2, 8) and fixed.fixed_batch == 2
        assert np.array_equal(fixed.run([x[:2]])[0], free.run([x[:2]])[0])
        assert any("made again for a batch of 2 (was 4)" in n for n in fixed.execution["notes"])
        with pytest.raises(ConfigError, match="input x is \\?x8\\): it cannot take 2x9"):
            fixed.resize([(2, 9)])  # checked against the file's own sizes, not the fixed ones
        # the profiler's session has the batch fixed as the session it speaks for
        ops = fixed.profile([x[:2]], runs=3)["ops"]
        assert ops and all(o["provider"] == "CPU" for o in ops)


def test_the_cpu_provider_leaves_a_free_batch_free(tmp_path):
    """On the CPU no batch is fixed unless asked: no graph to gain (bench/results/gpu-h200-b1.json:
    the same MobileNetV2 with its batch free and fixed, 1.64 and 1.65 ms), and any batch runs in the
    one session."""
    path = dense_onnx(tmp_path / "dyn.onnx")
    rng = np.random.default_rng(2)
    with open_model(path, device="cpu") as s:
        for n in (1, 5, 2):
            assert s.run([rng.uniform(-1, 1, (n, 8)).astype(np.float32)])[0].shape == (n, 4)
        assert s.fixed_batch is None and s.execution["batch_fixed"] is None
        assert not any("batch" in n for n in s.notes)


def test_a_file_with_a_fixed_batch_is_opened_as_it_is(tmp_path):
    path = dense_onnx(tmp_path / "fixed.onnx", batch=1)
    with open_fixed(path, 1) as s:
        assert s.inputs[0].shape == (1, 8) and s.fixed_batch is None and s.notes == []
        with pytest.raises(ConfigError, match="takes a fixed shape"):
            s.resize([(3, 8)])


def test_a_batch_below_one_is_refused():
    with pytest.raises(ConfigError, match="at least 1"):
        SessionOptions(batch=0)


def test_an_fp16_onnx_file_says_fp16(tmp_path):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32 = dense_onnx(tmp_path / "m.onnx")
    half = tmp_path / "m_fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True), str(half))
    assert ModelFile.open(fp32).quantization == "fp32"
    assert ModelFile.open(half).quantization == "fp16"


# -- TensorRT's libraries -------------------------------------------------------------------------


def gcc(out: Path, soname: str | None = None, needs: tuple[Path, ...] = ()) -> Path:
    """A stand-in shared library, compiled here: its own soname and what it links against."""
    src = out.parent / "stub.c"
    src.write_text("int edgekit_stub(void) { return 1; }\n")
    cmd = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src)]
    if soname:
        cmd.append(f"-Wl,-soname,{soname}")
    if needs:  # each by its file name, kept even though no symbol of it is used
        cmd += ["-Wl,--no-as-needed", *(f"-L{p.parent}" for p in needs), *(f"-l:{p.name}" for p in needs)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def loads_here(name: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


@pytest.fixture()
def libdir(tmp_path) -> Path:
    if shutil.which("gcc") is None:
        # .ci/run installs gcc; a device's root file system (docker/test-arm64.sh) has none
        if os.environ.get("CI"):
            pytest.fail("gcc is needed to build the stand-in libraries (.ci/run installs it)")
        pytest.skip("no gcc here to build the stand-in libraries")
    if loads_here("libnvinfer.so.10"):
        pytest.skip("this machine has TensorRT 10: the missing-library paths cannot be shown here")
    folder = tmp_path / "lib"
    folder.mkdir()
    return folder


def test_the_provider_library_dependencies_read_as_readelf_reads_them(libdir, tmp_path):
    from edgekit.runtime.native_libs import elf_needed
    from edgekit.runtime.nvidia import trt_needs

    deps = [
        gcc(libdir / n, soname=n) for n in ("libnvinfer.so.10", "libnvonnxparser.so.10", "libcudart.so.13")
    ]
    capi = tmp_path / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    provider = gcc(capi / "libonnxruntime_providers_tensorrt.so", needs=tuple(deps))
    needed = elf_needed(provider)
    assert needed[:3] == ["libnvinfer.so.10", "libnvonnxparser.so.10", "libcudart.so.13"]
    if shutil.which("readelf"):
        listing = subprocess.run(["readelf", "-d", str(provider)], capture_output=True, text=True).stdout
        assert needed == [
            line.split("[")[1].rstrip("]") for line in listing.splitlines() if "(NEEDED)" in line
        ]
    # the backend reads the installed provider library beside the module, less libc and the like
    ort = SimpleNamespace(__file__=str(capi.parent / "__init__.py"))
    assert trt_needs(ort) == (
        ["libnvinfer.so.10", "libnvonnxparser.so.10", "libcudart.so.13"],
        "this onnxruntime-gpu's TensorRT provider",
    )
    assert elf_needed(Path(__file__)) == []  # not ELF: nothing, no error


def edgekit(args: list[str], libdir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a child process whose loader looks in `libdir` first."""
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(libdir), os.environ.get("LD_LIBRARY_PATH")])),
    }
    return subprocess.run([*EDGEKIT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)


def test_doctor_names_a_tensorrt_of_the_wrong_major_version(libdir, tmp_path):
    gcc(libdir / "libnvinfer.so.11", soname="libnvinfer.so.11")  # TensorRT 11 where 10 is needed
    r = edgekit(["doctor"], libdir, tmp_path)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "libnvinfer" in x)
    assert "libnvinfer.so.10 is missing; found libnvinfer.so.11 (TensorRT 11), which" in line
    assert "which onnxruntime-gpu 1.31's TensorRT provider cannot load" in line
    assert "libnvonnxparser.so.10 is missing (TensorRT 10)" in line
    # with no TensorRT at all and no provider, doctor says nothing of it
    bare = edgekit(["doctor"], tmp_path / "empty", tmp_path)
    if "TensorrtExecutionProvider" not in bare.stdout:
        assert "TensorRT" not in bare.stdout


def test_doctor_names_what_a_present_tensorrt_lacks(libdir, tmp_path):
    """libnvinfer.so.10 is there, but a library it needs is not: it is not "missing", and the one
    that is is named."""
    dep = gcc(libdir / "libnvstandin_dep.so.1", soname="libnvstandin_dep.so.1")
    gcc(libdir / "libnvinfer.so.10", soname="libnvinfer.so.10", needs=(dep,))
    dep.unlink()
    r = edgekit(["doctor"], libdir, tmp_path)
    assert (
        "libnvinfer.so.10 is there but does not load: it needs libnvstandin_dep.so.1, which is missing"
        in r.stdout
    )


def test_device_tensorrt_says_which_library_keeps_it_out(libdir, tmp_path):
    """The backend's refusal, from a real bench row: this onnxruntime has no TensorRT provider, and
    the TensorRT on the loader's path is of a version no onnxruntime-gpu 1.31 loads."""
    gcc(libdir / "libnvinfer.so.11", soname="libnvinfer.so.11")
    model = dense_onnx(tmp_path / "m.onnx")
    cache = tmp_path / "engines"
    r = edgekit(
        ["bench", str(model), "--device", "tensorrt", "--no-save", "--trt-cache", str(cache)],
        libdir,
        tmp_path,
    )
    assert r.returncode == 1
    said = r.stdout + r.stderr
    assert "--device tensorrt needs onnxruntime-gpu" in said
    assert "libnvinfer.so.10 is missing; found libnvinfer.so.11 (TensorRT 11)" in said


def test_the_engine_cache_folder(monkeypatch, tmp_path):
    from edgekit.runtime.nvidia import trt_cache_dir, use_trt_cache

    monkeypatch.delenv("EDGEKIT_TRT_CACHE", raising=False)
    monkeypatch.delenv("EDGEKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert trt_cache_dir() == tmp_path / "xdg" / "edgekit" / "tensorrt"
    use_trt_cache(tmp_path / "engines")  # --trt-cache: for this process and the rows' processes
    assert (
        os.environ["EDGEKIT_TRT_CACHE"] == str(tmp_path / "engines")
        and trt_cache_dir() == tmp_path / "engines"
    )


# -- the verdict on int8 on CUDA --------------------------------------------------------------------


def cuda_profile(*ops: tuple[str, str, int, float]) -> dict:
    """A profile as `profile_onnx` returns it for a CUDA session: one entry per (operator, provider)
    with the host time per run, nodes per run and share. The shape is onnxruntime's: each node's
    "<name>_kernel_time" event carries `op_name` and `provider`, the full provider name of the
    kernel that ran it (sequential_executor.cc; what its own transformers/profile_result_processor.py
    groups by), so a node with no CUDA kernel shows as CPUExecutionProvider, and the copies the
    memcpy transformer puts around it (transformer_memcpy.cc) as MemcpyFromHost / MemcpyToHost of
    the CUDA provider. The figures are made up; the Q/DQ counts are a QDQ MobileNetV2's."""
    total = sum(ms for *_, ms in ops)
    return {
        "ops": [
            {"op": op, "provider": provider, "ms": ms, "nodes": nodes, "share": round(ms / total, 4)}
            for op, provider, nodes, ms in ops
        ]
    }


ROW = dict(
    backend="onnxruntime",
    format="onnx",
    load_ms=400,
    first_ms=900,
    p90_ms=1,
    p99_ms=1,
    mean_ms=1,
    runs=500,
    threads=None,
    accuracy=None,
    accuracy_samples=0,
    providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
)


def row(model: str, quantization: str, p50: float, size: int, device: str = "cuda", **more) -> BenchRow:
    return BenchRow(
        model=model, quantization=quantization, p50_ms=p50, size_bytes=size, device=device, **ROW, **more
    )


def test_verdict_says_why_a_qdq_file_is_slower_on_cuda():
    qdq = cuda_profile(
        ("Conv", "CUDA", 52, 0.30),
        ("DequantizeLinear", "CUDA", 104, 0.22),
        ("QuantizeLinear", "CUDA", 53, 0.11),
        ("Add", "CUDA", 10, 0.02),
    )
    rows = [
        row("mobilenetv2.onnx", "fp32", 0.40, 14_000_000),
        row("mobilenetv2_fp16.onnx", "fp16", 0.31, 7_000_000),
        row("mobilenetv2_int8.onnx", "int8", 0.68, 3_600_000, extra={"profile": qdq}),
    ]
    text = "\n".join(verdict(rows, {"cpu": {"flags": ["avx2"]}}))
    assert "mobilenetv2_int8.onnx is 0.26x the size of mobilenetv2.onnx but 1.70x slower" in text
    assert "157 (de)quantize nodes a run (DequantizeLinear, QuantizeLinear) take 51%, on top of Conv" in text
    assert "no int8 kernels for a QDQ file" in text
    assert "the fp16 file mobilenetv2_fp16.onnx took 0.31 ms here, against 0.68 ms for int8" in text
    assert "VNNI" not in text  # the CPU's flags say nothing about a GPU's int8


def test_verdict_says_which_nodes_fell_back_to_the_cpu_and_what_the_copies_cost():
    dynamic = cuda_profile(
        ("ConvInteger", "CPU", 2, 1.10),
        ("DynamicQuantizeLinear", "CPU", 2, 0.05),
        ("MemcpyToHost", "CUDA", 2, 0.30),
        ("MemcpyFromHost", "CUDA", 2, 0.10),
        ("Relu", "CUDA", 2, 0.05),
    )
    rows = [
        row("net.onnx", "fp32", 0.20, 40_000),
        row("net_dynamic.onnx", "dynamic", 1.60, 12_000, extra={"profile": dynamic}),
    ]
    text = "\n".join(verdict(rows, {}))
    assert (
        "4 node(s) ran on the CPU (ConvInteger, DynamicQuantizeLinear: no kernel in the GPU provider), 72%"
        in text
    )
    assert "copies between the GPU and the host (MemcpyFromHost, MemcpyToHost, 4 a run) take 25%" in text
    assert "measure an fp16 file beside it" in text


def test_verdict_on_cuda_reads_a_real_qdq_files_operators_without_a_profile(tmp_path):
    """No --profile: the reason comes from the file's own operators (a real QDQ file, quantized by
    onnxruntime as edgekit's exporter does)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32 = dense_onnx(tmp_path / "net.onnx", batch=1)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(3)
            self.it = iter([{"x": rng.uniform(-1, 1, (1, 8)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.it, None)

    int8 = tmp_path / "net_int8.onnx"
    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)  # fmt: skip
    ops = ModelFile.open(int8).ops.ops
    rows = [
        row(str(fp32), "fp32", 0.10, fp32.stat().st_size),
        row(str(int8), "int8", 0.101, int8.stat().st_size),  # no faster, not slower: still said
    ]
    text = "\n".join(verdict(rows, {}))
    assert (
        "note: net_int8.onnx (int8) is no faster than net.onnx (fp32) on cuda (1.01x its time, batch 1)"
        in text
    )
    want = f"the file is QDQ ({ops['DequantizeLinear']} DequantizeLinear, {ops['QuantizeLinear']} QuantizeLinear around MatMul)"
    assert want in text
    assert "run with --profile" in text


def test_a_cpu_row_keeps_its_cpu_reasons():
    cpu = dict(providers=["CPUExecutionProvider"])
    rows = [
        BenchRow(
            model="m.onnx", quantization="fp32", p50_ms=1.0, size_bytes=4000, device="cpu", **{**ROW, **cpu}
        ),
        BenchRow(
            model="m_int8.onnx",
            quantization="int8",
            p50_ms=2.0,
            size_bytes=1000,
            device="cpu",
            **{**ROW, **cpu},
        ),
    ]
    text = "\n".join(verdict(rows, {"cpu": {"flags": ["avx", "avx2"]}}))
    assert "no VNNI" in text and "CUDA" not in text and "fp16" not in text
