"""`edgekit bench`: the statistics on known sequences, the stopping rule, the result file's round
trips, memory per row, and bad input said in one sentence."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from tensor_fixtures import make_tensor_models
from typer.testing import CliRunner

from edgekit.benchmark.plan import plan_rows
from edgekit.benchmark.report import table
from edgekit.benchmark.results import BenchRow, from_csv, load_result, save_json, to_csv
from edgekit.benchmark.runner import Benchmark, BenchSettings
from edgekit.benchmark.verdict import verdict
from edgekit.cli import app
from edgekit.errors import ConfigError, DataError, UnknownNameError, UnsupportedError
from edgekit.runtime.backends import BACKENDS, SessionOptions
from edgekit.runtime.backends.tflite import module_file_present, tflite_backend
from edgekit.runtime.quantiles import percentiles
from edgekit.runtime.timing import (
    StopRule,
    mann_whitney,
    measure,
    median_ci,
    median_ci_ranks,
    rank,
    summarize,
)

runner = CliRunner()


def bench_models(paths, backends=("auto",), *, threads=(None,), devices=("auto",), **settings):
    """The rows a `Benchmark` of these files measures (each in its own process)."""
    s = BenchSettings(backends=tuple(backends), threads=tuple(threads), devices=tuple(devices), **settings)
    return Benchmark(paths, s).run().rows


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.runtime_only
def test_percentiles_of_a_known_sequence():
    values = list(range(1, 101))  # 1..100
    assert percentiles(values, [50, 90, 99]) == pytest.approx([50.5, 90.1, 99.01])
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 4096):  # numpy's default method, to the last bit or two
        x = rng.random(n)
        qs = [0, 1, 50, 90, 99, 99.9, 100]
        assert percentiles(x, qs) == pytest.approx(np.percentile(x, qs), rel=1e-12, abs=1e-15)
    assert percentiles([], [50]) == []
    lat = summarize([v / 1e3 for v in values])
    assert lat.p50_ms == pytest.approx(50.5) and lat.min_ms == 1 and lat.runs == 100
    assert lat.std_ms == pytest.approx(np.std(values, ddof=1)) and lat.cv == pytest.approx(lat.std_ms / 50.5)


@pytest.mark.runtime_only
def test_median_interval_from_order_statistics():
    # binomial(10, 1/2): P(B <= 1) = 11/1024 <= 2.5% < P(B <= 2) = 56/1024, so ranks 2 and 9
    assert median_ci_ranks(10) == (2, 9)
    assert median_ci_ranks(6) == (1, 6)  # P(B = 0) = 1/64
    assert median_ci_ranks(5) is None  # 1/32 > 2.5%: five values cannot bracket the median at 95%
    lo, hi = median_ci_ranks(1000)
    assert (lo, hi) == (469, 532)  # the normal approximation gives 469.0 and 532.0
    assert median_ci([5, 1, 4, 2, 3, 6, 9, 8, 7, 10]) == (2, 9)


@pytest.mark.runtime_only
def test_the_stopping_rule():
    rule = StopRule(max_time=10, min_runs=50, min_time=0)
    steady = [1.0] * 49
    assert rule.done(steady, 0.1) == (False, False)  # too few runs, however steady
    assert rule.done([*steady, 1.0], 0.1) == (True, True)
    noisy = [1.0, 2.0] * 100  # the median's interval spans 1 to 2: never within 2.5%
    assert rule.done(noisy, 0.1) == (False, False)
    assert rule.done(noisy, 10.0) == (True, False)  # the time limit ends it, not stable
    assert StopRule(runs=7).done([1.0] * 7, 0.0) == (True, False)
    calls = []
    lat = measure(lambda: calls.append(1), StopRule(runs=25, warmup=3, warmup_time=0))
    assert lat.runs == 25 and len(calls) == 28


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return make_tensor_models(root / "small", 16, "small"), make_tensor_models(root / "big", 2048, "big")


def test_rows_in_their_own_processes_round_trip_and_memory(nets, tmp_path):
    small, big = nets
    rows = bench_models([small["onnx"], big["onnx"]], ["onnxruntime"], runs=30, threads=[1])
    assert all(r.error is None for r in rows), [r.error for r in rows]
    # a 2048-wide layer holds 8x2048 + 2048x4 weights: more resident memory than a 16-wide one
    assert rows[1].size_bytes > 10 * rows[0].size_bytes
    assert rows[1].peak_rss_mb > rows[0].peak_rss_mb
    assert all(r.runs == 30 and r.throughput > 0 and r.load_start is not None for r in rows)
    path = save_json(rows, tmp_path / "r.json")
    back = load_result(path)
    assert back.schema_version == 2 and back.rows == rows
    assert back.host["cpu"]["cores"] >= 1 and "onnxruntime" in back.host["versions"]
    again = from_csv(to_csv(rows))
    keep = [f for f in BenchRow.__dataclass_fields__ if f != "extra"]
    assert [[getattr(r, f) for f in keep] for r in again] == [[getattr(r, f) for f in keep] for r in rows]


def test_a_backend_that_cannot_open_a_file_gives_its_row_a_reason(nets, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    r = invoke("bench", nets[0]["onnx"], bad, "--runs", "10", "--no-save")
    assert r.exit_code == 0, r.output
    assert "failed: " in r.stdout and "broken.onnx" in r.stdout
    r = invoke("bench", bad, "--runs", "10", "--out", tmp_path / "result.json")
    assert r.exit_code == 1 and "nothing could be measured" in r.output
    assert not (tmp_path / "result.json").exists(), "a result with no figure is not saved"


def test_unknown_names_are_one_sentence(nets):
    with pytest.raises(UnknownNameError):
        bench_models([nets[0]["onnx"]], ["onnxruntim"])
    with pytest.raises(ConfigError, match="unknown --device"):
        bench_models([nets[0]["onnx"]], ["onnxruntime"], devices=["gpu0"])
    r = invoke("bench", nets[0]["onnx"], "--backend", "litert", "--no-save")
    assert r.exit_code == 1 and "opens" in r.output


@pytest.mark.runtime_only
def test_older_and_other_schemas(tmp_path):
    old = tmp_path / "old.json"  # what `bench --json FILE` wrote before schema 2
    old.write_text(
        json.dumps(
            {
                "machine": {"cpus": 2},
                "results": [
                    {
                        "model": "m.tflite",
                        "backend": "litert",
                        "device": "cpu",
                        "format": "tflite",
                        "quantization": "int8",
                        "size_bytes": 10,
                        "load_ms": 1.0,
                        "first_ms": 1.0,
                        "p50_ms": 0.1,
                        "p90_ms": 0.2,
                        "p99_ms": 0.3,
                        "mean_ms": 0.1,
                        "runs": 200,
                        "threads": None,
                        "accuracy": 0.9,
                        "accuracy_samples": 10,
                    }
                ],
            }
        )
    )
    result = load_result(old)
    assert result.schema_version == 1 and result.rows[0].p50_ms == 0.1 and result.rows[0].batch == 1
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema": "edgekit-bench", "schema_version": 9, "results": []}))
    with pytest.raises(DataError, match="version 9"):
        load_result(future)
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    with pytest.raises(DataError, match="cannot read"):
        load_result(junk)


@pytest.mark.runtime_only
def test_verdict_says_why_int8_is_slower():
    base = dict(
        backend="onnxruntime",
        device="cpu",
        format="onnx",
        load_ms=1,
        first_ms=1,
        p90_ms=1,
        p99_ms=1,
        mean_ms=1,
        runs=100,
        threads=1,
        accuracy=None,
        accuracy_samples=0,
    )
    fp32 = BenchRow(model="m.onnx", quantization="fp32", size_bytes=4000, p50_ms=1.0, **base)
    profile = {
        "ops": [
            {"op": "ConvInteger", "provider": "CPU", "ms": 2.0, "nodes": 2, "share": 0.8},
            {"op": "DynamicQuantizeLinear", "provider": "CPU", "ms": 0.2, "nodes": 2, "share": 0.1},
        ]
    }
    int8 = BenchRow(
        model="m_int8.onnx",
        quantization="int8",
        size_bytes=1000,
        p50_ms=2.5,
        extra={"profile": profile},
        **base,
    )
    lines = verdict([fp32, int8], {"cpu": {"flags": ["avx", "avx2"]}})
    text = "\n".join(lines)
    assert "fastest: m.onnx" in text and "smallest: m_int8.onnx" in text
    assert "0.25x the size of m.onnx but 2.50x slower" in text
    assert "ConvInteger takes 80%" in text and "no VNNI" in text


@pytest.mark.runtime_only
def test_mann_whitney_on_hand_computed_cases():
    # [1, 2] against [3, 4]: U = 0 (every a below every b), mean 2, variance 2*2*5/12, so with the
    # continuity correction z = (4 - 2 - 0.5) / sqrt(5/3) and p = erfc(z / sqrt 2) = 0.24528
    u, p = mann_whitney([1, 2], [3, 4])
    assert u == 0 and p == pytest.approx(0.2452781168, abs=1e-9)
    # ties: [1, 2, 2] against [2, 3] ranks 1, 3, 3 | 3, 5 (three 2s share rank 3), U = 7 - 6 = 1;
    # tie term (3^3 - 3) / (5 * 4) = 1.2, variance 3*2/12 * (6 - 1.2) = 2.4, z = (5 - 3 - 0.5) / sqrt(2.4)
    ranks, groups = rank(np.array([1.0, 2, 2, 2, 3]))
    assert ranks.tolist() == [1, 3, 3, 3, 5] and groups.tolist() == [1, 3, 1]
    u, p = mann_whitney([1, 2, 2], [2, 3])
    assert u == 1 and p == pytest.approx(math.erfc(1.5 / math.sqrt(2.4) / math.sqrt(2)), abs=1e-12)
    assert mann_whitney([5, 5, 5], [5, 5]) == (3.0, 1.0)  # all tied: nothing to tell apart
    assert mann_whitney([], [1.0]) == (0.0, 1.0)


@pytest.mark.runtime_only
def test_mann_whitney_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    for n1, n2, decimals, shift in [(9, 12, 1, 0.0), (200, 150, 2, 0.05), (3000, 2500, 3, 0.01)]:
        a = np.round(rng.lognormal(0.0, 0.3, n1), decimals)  # rounded: ties, as timer ticks make
        b = np.round(rng.lognormal(shift, 0.3, n2), decimals)
        want = stats.mannwhitneyu(a, b, method="asymptotic")
        u, p = mann_whitney(a, b)
        assert u == pytest.approx(float(want.statistic)) and p == pytest.approx(float(want.pvalue), rel=1e-9)


def _timed_row(model: str, samples: list[float]) -> BenchRow:
    ms = np.asarray(samples)
    return BenchRow(
        model=model, backend="onnxruntime", device="cpu", format="onnx", quantization="fp32",
        size_bytes=1000, load_ms=1, first_ms=1, p50_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)), p99_ms=float(np.percentile(ms, 99)), mean_ms=float(ms.mean()),
        runs=len(ms), threads=1, accuracy=None, accuracy_samples=0, extra={"samples_ms": list(samples)},
    )  # fmt: skip


@pytest.mark.runtime_only
def test_the_table_marks_differences_the_test_cannot_tell_apart():
    rng = np.random.default_rng(3)
    base = _timed_row("a.onnx", rng.lognormal(0.0, 0.1, 400).tolist())
    same = _timed_row("b.onnx", rng.lognormal(0.0, 0.1, 400).tolist())  # the same distribution
    faster = _timed_row("c.onnx", rng.lognormal(-0.3, 0.1, 400).tolist())
    lines = table([base, same, faster], base).splitlines()
    row = {line.split()[0]: line for line in lines[1:4]}
    assert row["a.onnx"].split()[-2:] == ["1.00x", "base"]
    assert "≈" in row["b.onnx"] and float(row["b.onnx"].split()[-1]) >= 0.05
    assert "≈" not in row["c.onnx"] and row["c.onnx"].split()[-1] == "<0.001"
    assert "Mann-Whitney" in lines[-1]


def test_rows_run_in_a_seeded_random_order_and_are_shown_in_the_users(nets, tmp_path):
    small = nets[0]
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    paths = [small["onnx"], bad]
    plan = plan_rows(paths, ["auto"], ["auto"], [1, 2], [1])
    rows = bench_models(paths, ["auto"], threads=[1, 2], runs=10, seed=1)
    assert [(Path(r.model), r.threads) for r in rows] == [(p, t) for p, _, _, t, _ in plan]
    order = [r.extra["run_order"] for r in rows]
    assert sorted(order) == [1, 2, 3, 4] and order != [1, 2, 3, 4]
    again = bench_models(paths, ["auto"], threads=[1, 2], runs=10, seed=1)
    assert [r.extra["run_order"] for r in again] == order  # the seed fixes the order
    # a failed row is named as a measured one: the backend and device it asked for, not "auto"
    ok, failed = rows[0], rows[2]
    assert ok.error is None and failed.error and "broken.onnx" in failed.error
    assert (failed.backend, failed.device) == (ok.backend, ok.device) == ("onnxruntime", "cpu")
    assert failed.name == ok.name.replace(small["onnx"].name, "broken.onnx")


def test_all_backends_are_the_ones_that_run_here(nets):
    tflite = nets[0]["tflite"]
    usable = [name for name, b in BACKENDS.items() if ".tflite" in b.suffixes and b.available()]
    planned = [p.backend for p in plan_rows([tflite], ["all"], ["auto"], [1], [1])]
    assert planned == usable and "litert" in planned
    # TensorFlow 2.21's tensorflow.lite package has no Interpreter: the backend looks for the module
    # that has it, by file, without importing TensorFlow
    assert module_file_present("ai_edge_litert.interpreter")
    assert not module_file_present("ai_edge_litert.no_such_module") and not module_file_present(
        "no_such_pkg.x"
    )
    tf = importlib.util.find_spec("tensorflow") is not None
    assert ("tf-lite" in planned) == tf
    rows = bench_models([tflite], ["all"], threads=[1], runs=10)
    assert [r.backend for r in rows] == planned
    assert all(r.error is None and r.device == "cpu" for r in rows), [r.error for r in rows]


def test_a_module_with_no_interpreter_is_said_so_not_blamed_on_the_file(nets):
    pytest.importorskip("tensorflow")
    # what edgekit loaded before: TensorFlow 2.21's tensorflow.lite package, which has no Interpreter
    old = tflite_backend("tf-lite-old", "tensorflow.lite", "pip install 'edgekit[train]'")
    with pytest.raises(UnsupportedError, match="tensorflow.lite has no Interpreter; use the litert") as e:
        old.open(nets[0]["tflite"], SessionOptions())
    assert "damaged" not in str(e.value)


def test_the_gpu_check_parses_and_its_cpu_parts_run(nets, tmp_path):
    """bench/gpu_check.sh runs on a GPU machine only; here: it parses, and its Python part makes the
    batch variants of a batch-1 file and times the three modes on the CPU, saying what ran."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    subprocess.run(["bash", "-n", str(root / "bench" / "gpu_check.sh")], check=True)
    script = str(root / "bench" / "gpu_modes.py")
    subprocess.run(
        [sys.executable, script, "variants", nets[0]["onnx"], tmp_path, "--batch", "3"], check=True
    )
    stem = nets[0]["onnx"].stem
    fixed, dynamic = tmp_path / f"{stem}_b3.onnx", tmp_path / f"{stem}_dyn.onnx"
    out = tmp_path / "modes.json"
    args = ["time", fixed, dynamic, "--batch", "3", "--device", "cpu", "--runs", "20", "--warmup", "2"]
    subprocess.run([sys.executable, script, *map(str, args), "--out", str(out)], check=True)
    doc = json.loads(out.read_text())
    assert set(doc["modes"]) == {"plain", "binding", "graph"} and doc["batch"] == 3
    for mode in doc["modes"].values():
        assert mode["p50_ms"] > 0 and mode["max_abs_diff_vs_plain"] < 1e-5
        assert mode["ran"]["providers"][0] == "CPUExecutionProvider" and not mode["ran"]["io_binding"]


@pytest.mark.runtime_only
def test_the_version_reported_is_the_one_python_imports(tmp_path, monkeypatch):
    """onnxruntime-gpu installed in a folder ahead of an image's onnxruntime (the GPU machine): both
    ship the module `onnxruntime`, and the result named the one that was not imported."""
    import importlib
    import sys

    from edgekit.runtime import hostinfo

    def site(folder: str, dist: str, version: str) -> Path:
        root = tmp_path / folder
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (root / "ekprobe").mkdir()
        (root / "ekprobe" / "__init__.py").write_text("")
        return root

    cpu, gpu = site("image", "ekprobe", "1.0"), site("extra", "ekprobe-gpu", "2.0")
    monkeypatch.setitem(hostinfo.PACKAGES, "probe", ("ekprobe", ("ekprobe", "ekprobe-gpu")))
    for first, want in (
        (gpu, "2.0 (ekprobe-gpu); ekprobe 1.0 also installed"),
        (cpu, "1.0; ekprobe-gpu 2.0 also installed"),
    ):
        other = cpu if first == gpu else gpu
        monkeypatch.setattr(sys, "path", [str(first), str(other), *sys.path])
        importlib.invalidate_caches()
        assert hostinfo.versions()["probe"] == want
    # one folder that holds both: it cannot be told which one's files are there; both are said
    both = site("both", "ekprobe", "1.5")
    info = both / "ekprobe_gpu-2.5.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ekprobe-gpu\nVersion: 2.5\n")
    monkeypatch.setattr(sys, "path", [str(both), *sys.path])
    importlib.invalidate_caches()
    assert hostinfo.versions()["probe"] == "1.5; ekprobe-gpu 2.5 also installed"


def test_rows_are_measured_by_the_installed_edgekit_whatever_the_working_folder_holds(nets, tmp_path):
    """A checkout of edgekit's repository as the working folder (its `edgekit/` holds only part of the
    package) must not be what the row's child process imports: `-m` would put it first on sys.path."""
    import subprocess
    import sys

    decoy = tmp_path / "edgekit"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the working folder edgekit/ was imported')\n")
    edgekit = Path(sys.executable).with_name("edgekit")
    proc = subprocess.run(
        [str(edgekit), "bench", str(nets[0]["onnx"]), "--runs", "5", "--no-save", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)["results"]
    assert row["error"] is None and row["runs"] == 5
