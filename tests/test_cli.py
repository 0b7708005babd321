"""The CLI through typer's CliRunner: what a user types, what a user sees, and the exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from said import assert_names_what_it_wrote, files_under
from typer.testing import CliRunner

from edgekit.cli import app

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"  # the shipped BlazeFace files
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def assert_clean_error(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output and result.stderr.count("\n") == 1


def test_train_export_run_info_bench(tmp_path, digit_pngs):
    out = tmp_path / "run"
    r = invoke("train", "mnist-mlp", "--out", out, "--epochs", "1", "--limit", "600")
    assert r.exit_code == 0, r.output
    assert "held-out accuracy" in r.stdout
    assert {p.name for p in out.iterdir()} >= {"model.keras", "card.json", "history.json", "curves.png"}

    r = invoke("export", out / "model.keras", "--to", "tflite", "--quantize", "int8")
    assert r.exit_code == 0, r.output
    assert "top-1 agreement" in r.stdout and "max abs diff" in r.stdout
    model = out / "model_int8.tflite"

    folder, _ = digit_pngs
    r = invoke("run", model, "--source", folder, "--json", "--top-k", "2")
    assert r.exit_code == 0, r.output
    *lines, last = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 8 and all(len(rec["results"]) == 2 for rec in lines)
    assert last["summary"]["processed"] == 8 and last["summary"]["frames_in"] == 8
    assert {"preprocess", "inference", "postprocess"} == set(lines[0]["times_ms"])

    r = invoke("info", model, "--json")
    card = json.loads(r.stdout)
    assert card["recipe"] == "mnist-mlp" and card["quantization"] == "int8" and card["parity"]["passed"]
    r = invoke("info", model)
    assert "weights sha256" in r.stdout and "int8" in r.stdout

    report = tmp_path / "bench.json"
    r = invoke("bench", model, out / "model.keras", "--runs", "20", "--out", report)
    assert r.exit_code == 0, r.output
    assert "p50 ms" in r.stdout
    doc = json.loads(report.read_text())
    assert [row["backend"] for row in doc["results"]] == ["litert", "keras"]
    assert all(row["accuracy"] > 0.5 and row["p50_ms"] > 0 for row in doc["results"])
    assert doc["machine"]["cpus"] >= 1


def test_quickstart_runs_the_whole_flow(tmp_path):
    out = tmp_path / "qs"
    before = files_under(tmp_path)
    r = invoke("quickstart", "--out", out, "--epochs", "1", "--runs", "30", "--json", tmp_path / "qs.json")
    assert r.exit_code == 0, r.output
    for name in ("model.keras", "model.tflite", "model_int8.tflite", "model.onnx", "model_int8.onnx"):
        assert name in r.stdout and (out / name).exists()
    assert "speed-up" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80  # the table reads in 80 columns
    assert_names_what_it_wrote(tmp_path, before, r)
    # every long step said as it begins: each conversion, each benchmark row (named as people say it)
    assert r.stderr.count(": converting to") == 4 and "model.keras on keras cpu: " in r.stderr
    assert len(re.findall(r"^\[\d/5\] .+ on .+: p50 ", r.stderr, re.M)) == 5
    doc = json.loads((tmp_path / "qs.json").read_text())
    # the benchmark's own result file (what `compare` reads), every row measured in its own process
    rows = doc["results"]
    assert doc["schema"] == "edgekit-bench" and len(rows) == 5 and rows[0]["backend"] == "keras"
    assert doc["baseline"] == "model.keras:keras:cpu:tdefault:b1"
    assert len({r["peak_rss_mb"] for r in rows}) > 1  # each row's own memory, not one process's
    (out / "model.onnx").write_bytes(b"stale")  # the earlier run's files go: the folder is the quickstart's
    again = invoke("quickstart", "--out", out, "--epochs", "1", "--runs", "10")
    assert again.exit_code == 0, again.output
    assert f"replacing the earlier quickstart in {out}" in again.stderr
    assert (out / "model.onnx").read_bytes() != b"stale" and not list(tmp_path.glob(".qs.previous-*"))


@pytest.mark.runtime_only
def test_quickstart_leaves_a_folder_it_did_not_make_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_clean_error(invoke("quickstart", "--out", tmp_path, "--epochs", "1"), "no quickstart made")
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.runtime_only
def test_missing_model_file(tmp_path):
    assert_clean_error(invoke("run", tmp_path / "nope.tflite", "--source", tmp_path), "does not exist")


@pytest.mark.runtime_only
def test_text_file_renamed_tflite(tmp_path):
    fake = tmp_path / "model.tflite"
    fake.write_text("hello")
    assert_clean_error(invoke("info", fake), "not a TFLite model")


@pytest.mark.runtime_only
def test_truncated_onnx(tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((ASSETS / "face_detection_front_128x128_barracuda.onnx").read_bytes()[:3000])
    assert_clean_error(invoke("run", cut, "--source", tmp_path), "not a valid ONNX model")


@pytest.mark.runtime_only
def test_unknown_recipe_gets_a_suggestion(tmp_path):
    r = invoke("train", "mnist-cnm", "--out", tmp_path)
    assert_clean_error(r, "unknown recipe 'mnist-cnm': did you mean mnist-cnn?")


@pytest.mark.runtime_only
def test_undecodable_image(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not a png")
    assert_clean_error(
        invoke("run", ASSETS / "face_detection_short_range.tflite", "--source", bad), "not an image"
    )


def test_existing_output_without_force(trained, artifacts):
    before = artifacts[("onnx", "int8")].read_bytes()
    r = invoke("export", trained, "--to", "onnx", "--quantize", "int8")
    assert_clean_error(r, "already exists: pass --force")
    assert artifacts[("onnx", "int8")].read_bytes() == before


def test_unknown_format_and_mode(trained):
    assert_clean_error(invoke("export", trained, "--to", "coreml"), "unknown export format 'coreml'")
    assert_clean_error(
        invoke("export", trained, "--to", "onnx", "--quantize", "int4"), "unknown quantization 'int4'"
    )


def test_output_under_a_file_is_refused(trained, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_clean_error(invoke("export", trained, "--out", blocker / "m.tflite"), "not writable")


def test_unwritable_output_folder(trained, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        import os

        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        r = invoke("export", trained, "--out", locked / "m.tflite")
        assert_clean_error(r, "not writable")
    finally:
        locked.chmod(0o700)


def test_corrupt_keras_file(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"PK\x03\x04 broken zip")
    (tmp_path / "card.json").write_text("{}")
    r = invoke("export", bad)
    assert r.exit_code == 1 and "Traceback" not in r.output


@pytest.mark.runtime_only
def test_verbose_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        runner.invoke(app, ["--verbose", "info", str(tmp_path / "x.onnx")], catch_exceptions=False)


@pytest.mark.runtime_only
def test_list_imports_no_tensorflow():
    from conftest import run_python

    proc = run_python(
        "import sys\nfrom typer.testing import CliRunner\nfrom edgekit.cli import app\n"
        "r = CliRunner().invoke(app, ['list'])\nprint(r.exit_code, 'tensorflow' in sys.modules)"
    )
    assert proc.stdout.split() == ["0", "False"], proc.stdout + proc.stderr


@pytest.mark.runtime_only
def test_list_and_doctor():
    r = invoke("list")
    assert r.exit_code == 0
    for word in (
        "mnist-cnn",
        "mnist-mlp",
        "tflite",
        "onnx",
        "litert",
        "onnxruntime",
        "classify-image",
        "camera",
    ):
        assert word in r.stdout
    r = invoke("doctor")
    assert r.exit_code == 0 and "onnxruntime providers" in r.stdout


def test_info_shows_per_class_scores_one_short_line_per_class(artifacts):
    model = artifacts[("tflite", "int8")]
    card = json.loads(invoke("info", model, "--json").stdout)
    heldout, parity = card["metrics"]["heldout_per_class"], card["parity"]["per_class"]
    assert len(heldout) == len(parity) == 10 and set(heldout["3"]) >= {"precision", "recall", "f1"}
    r = invoke("info", model)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert not any("per_class=" in line or "'precision'" in line for line in lines)  # no dict on one line
    for title, table in (("metrics heldout_per_class:", heldout), ("parity per_class:", parity)):
        at = lines.index(f"  {title}")
        head, *rows = (line.split() for line in lines[at + 1 : at + 12])
        assert head == ["class", *next(iter(table.values()))]
        assert [row[0] for row in rows] == list(table)
        recall = head.index("recall")
        assert all(float(row[recall]) == round(table[row[0]]["recall"], 4) for row in rows)


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand the app registers (`data make`, `import darknet` included)."""
    import typer.main

    def walk(group, path=()):
        for name, sub in sorted(getattr(group, "commands", {}).items()):
            yield (*path, name)
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app)))


@pytest.mark.runtime_only
@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_command_has_help(path):
    r = invoke(*path, "--help")
    assert r.exit_code == 0, r.output
    assert f"Usage: edgekit {' '.join(path)} " in r.stdout


@pytest.mark.runtime_only
def test_top_level_help_lists_every_command_from_a_fresh_start():
    """`edgekit --help` as a user runs it (commands registered lazily, by what is invoked) lists
    every command with its summary; `edgekit run --help` imports no other command's module."""
    import subprocess
    import sys

    top = {path[0] for path in _command_paths()}
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = {line.strip("│ ").split(" ")[0] for line in proc.stdout.splitlines()}  # typer draws boxes
    assert top <= listed, top - listed
    assert "Show the model card inside a file" in proc.stdout  # a command's own help line

    from conftest import run_python

    proc = run_python(
        "import sys\nfrom edgekit.cli import main\nsys.argv = ['edgekit', 'run', '--help']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "others = sorted(m for m in sys.modules if m.startswith('edgekit.cli.') and m not in "
        "('edgekit.cli.core', 'edgekit.cli.run'))\nprint('EXIT', code, others)"
    )
    assert "Usage: " in proc.stdout and "--source" in proc.stdout, proc.stderr
    assert proc.stdout.splitlines()[-1] == "EXIT 0 []", proc.stdout[-500:]


@pytest.mark.runtime_only
def test_run_imports_only_what_running_an_image_model_needs(tmp_path):
    """Start-up: `edgekit run` on a BlazeFace file and one photo imports no other command, no audio
    or text task, none of typer's rich/pydantic helpers and no numpy.random/numpy.ma (30 ms of a
    start when the run statistics used them)."""
    import cv2
    import numpy as np
    from conftest import run_python

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((240, 320, 3), 90, np.uint8))
    model = Path(__file__).parents[1] / "runtime" / "assets" / "face_detection_short_range.tflite"
    proc = run_python(
        "import sys\nfrom edgekit.cli import main\n"
        f"sys.argv = ['edgekit', 'run', {str(model)!r}, '--source', {str(photo)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    print('EXIT', e.code)\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))"
    )
    loaded = set(proc.stdout.splitlines()[-1].split()[1:])
    assert "edgekit.cli.run" in loaded and "edgekit.runtime.tasks.detect" in loaded, proc.stderr
    unwanted = {"rich", "pydantic", "numpy.random", "numpy.ma", "tensorflow", "onnxruntime"}
    unwanted |= {
        m for m in loaded if m.startswith("edgekit.cli.") and m not in ("edgekit.cli.core", "edgekit.cli.run")
    }
    unwanted |= {
        "edgekit.runtime.tasks.audio",
        "edgekit.runtime.tasks.text",
        "edgekit.runtime.tasks.classify",
    }
    assert not loaded & unwanted, sorted(loaded & unwanted)


@pytest.mark.runtime_only
def test_doctor_says_what_keeps_the_cuda_provider_from_loading_most_basic_first():
    """A machine or container with no NVIDIA driver is told so (not to install wheels it has); with
    a driver, the missing CUDA/cuDNN wheels are named; with both, the driver's age is suspected."""
    from edgekit.cli.listing import cuda_missing

    needs = ["nvidia-cuda-runtime~=13.0", "nvidia-cudnn-cu13~=9.0", "edgekit-no-such-wheel>=1; extra == 'x'"]
    assert "no NVIDIA driver" in cuda_missing("13", needs, driver=False)
    missing = cuda_missing("13", needs, driver=True)
    assert "edgekit-no-such-wheel" in missing and "pip install 'onnxruntime-gpu[cuda,cudnn]'" in missing
    assert "nvidia-smi" in cuda_missing("13", ["pytest>=7"], driver=True)  # installed: not missing
