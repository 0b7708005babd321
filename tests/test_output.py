"""What the CLI says, and that it ignores nothing (issue 31): every option honoured or refused in one
sentence with exit code 1; help in words; every file written named; long steps said as they
begin; `info` in words and rounded numbers; the bench table in 80 columns with its marks
explained; the comparison chart; the tune plots; captions that read on any picture; a parity check
on constant outputs said to prove nothing; arrays split into samples; Ctrl-C keeping what was done;
the README's sample output checked against the code."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
import typer
from said import assert_names_what_it_wrote, assert_readable_info, files_under
from typer.testing import CliRunner

from edgekit.cli import app

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "runtime" / "assets"
BLAZEFACE = ASSETS / "face_detection_short_range.tflite"
ULTRALYTICS = ROOT / "tests" / "fixtures" / "ultralytics"
EDGEKIT = [sys.executable, "-m", "edgekit.cli"]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_sentence(result, *words: str) -> None:
    """Exit 1, one red line on stderr naming `words`, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def photo(path: Path, value: int = 255) -> Path:
    import cv2

    cv2.imwrite(str(path), np.full((120, 160, 3), value, np.uint8))
    return path


# ---- every option honoured or refused -------------------------------------------------------------


def commands() -> dict[tuple[str, ...], typing.Any]:
    """Every command of the app by its words (`data make`), from the app itself."""
    found = {}

    def walk(cmd, words):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*words, name))
        else:
            found[words] = cmd

    walk(typer.main.get_command(app), ())
    return found


def options() -> list[tuple[tuple[str, ...], str, typing.Any]]:
    """(command, option, parameter) for every option and argument that takes a value."""
    out = []
    for words, cmd in commands().items():
        for p in cmd.params:
            if getattr(p, "is_flag", False):
                continue
            out.append((words, p.opts[0] if p.param_type_name == "option" else p.name, p))
    return out


# The arguments that take each command past its parsing: the refusals below come before any of
# them is read, or they are real (the shipped BlazeFace, the trained model, a photo)
def needed(words, trained, tmp_path) -> list[str]:
    picture = photo(tmp_path / "photo.png")
    return {
        ("bench",): [BLAZEFACE],
        ("compare",): [tmp_path / "r.json"],
        ("evaluate",): [BLAZEFACE],
        ("export",): [trained],
        ("info",): [BLAZEFACE],
        ("run",): [BLAZEFACE, "--source", picture],
        ("train",): ["mnist-mlp", "--out", tmp_path / "t"],
        ("tune",): ["mnist-mlp", "--out", tmp_path / "u"],
        ("data", "make"): ["text", "--out", tmp_path / "d"],
        ("import", "darknet"): [tmp_path / "x.cfg"],
    }.get(words, [])


# numbers the library refuses (those the parser refuses declare their range: min/max)
BOUNDS = {
    (("bench",), "--runs"): "0",
    (("bench",), "--max-time"): "0",
    (("bench",), "--warmup"): "-1",
    (("bench",), "--eval-samples"): "0",
    (("run",), "--top-k"): "0",
    (("run",), "--threads"): "0",
}
ANY_NUMBER = {(("bench",), "--seed"), (("export",), "--scale"), (("export",), "--offset")}
# options with a fixed set of values: a wrong one is refused naming them
CHOICES = {
    (("export",), "--to"): ["tflite", "onnx", "all"],
    (("export",), "--quantize"): ["fp32", "fp16", "dynamic", "int8"],
    (("export",), "--calib-method"): ["minmax", "entropy", "percentile"],
    (("export",), "--io"): ["int8", "uint8", "float"],
    (("export",), "--batch"): ["1", "dynamic"],
    (("export",), "--normalize"): ["0..1", "-1..1", "none"],
    (("export",), "--task"): ["classify-image", "detect", "tensor"],
    (("run",), "--backend"): ["litert", "onnxruntime"],
    (("run",), "--device"): ["auto", "cpu", "cuda"],
    (("evaluate",), "--backend"): ["litert", "onnxruntime"],
    (("bench",), "--backend"): ["litert", "onnxruntime"],
    (("bench",), "--device"): ["cpu", "cuda", "auto"],
    (("train",), "recipe"): ["mnist-cnn", "mnist-mlp"],
    (("train",), "--strategy"): ["none", "mirrored", "multiworker"],
    (("train",), "--format"): ["keras", "h5"],
    (("train",), "--missing"): ["drop", "mean", "median"],
    (("train",), "--outliers"): ["iqr", "zscore"],
    (("train",), "--scale"): ["standard", "minmax", "none"],
    (("train",), "--classes"): ["auto", "yes", "no"],
    (("tune",), "recipe"): ["mnist-cnn", "mnist-mlp"],
    (("tune",), "--strategy"): ["grid", "random", "hyperband"],
    (("tune",), "--metric"): ["accuracy", "macro_f1", "loss"],
    (("data", "make"), "name"): ["text", "scenes"],
}
# values with a form: a malformed one is refused naming the form
FORMS = {
    (("run",), "--size"): ("abc", "640x480"),
    (("run",), "--classes"): ("x", "0,2"),
    (("bench",), "--threads"): ("0", "at least 1"),
    (("bench",), "--batch"): ("0", "at least 1"),
    (("bench",), "--shape"): ("abc", "1x3x224x224"),
    (("train",), "--set"): ("abc", "NAME=VALUE"),
    (("train",), "--range"): ("abc", "LOW..HIGH"),
    (("train",), "--unit"): ("abc", "COLUMN=VALUE"),
    (("tune",), "--grid"): ("abc", "NAME=V1,V2"),
    (("run",), "--serve"): ("abc", "[HOST:]PORT"),
}
# anything goes, or what it names is checked when it is read (files, data, texts, names of rows,
# layers and columns): their own tests say how a bad one is refused
FREE = {
    (("bench",), "models"),
    (("bench",), "--baseline"),
    (("bench",), "--data"),
    (("bench",), "--csv"),
    (("bench",), "--out"),
    (("bench",), "--on"),
    (("bench",), "--hosts"),
    (("bench",), "--ssh-config"),
    (("bench",), "--plot"),
    (("compare",), "results"),
    (("compare",), "--plot"),
    (("compare",), "--baseline"),
    (("evaluate",), "model"),
    (("evaluate",), "--data"),
    (("evaluate",), "--confusion"),
    (("export",), "model"),
    (("export",), "--out"),
    (("export",), "--data"),
    (("export",), "--labels"),
    (("export",), "--report"),
    (("export",), "--float-layers"),
    (("info",), "model"),
    (("quickstart",), "--out"),
    (("quickstart",), "--json"),
    (("run",), "model"),
    (("run",), "--source"),
    (("run",), "--text"),
    (("run",), "--card"),
    (("run",), "--anchors"),
    (("run",), "--labels"),
    (("run",), "--save"),
    (("run",), "--token"),
    (("run",), "--trt-cache"),
    (("bench",), "--trt-cache"),
    (("train",), "--out"),
    (("train",), "--data"),
    (("train",), "--target"),
    (("train",), "--features"),
    (("train",), "--categorical"),
    (("tune",), "--out"),
    (("tune",), "--data"),
    (("data", "make"), "--out"),
    (("import", "darknet"), "cfg"),
    (("import", "darknet"), "weights"),
    (("import", "darknet"), "--out"),
    (("import", "darknet"), "--labels"),
}


def numeric(param) -> bool:
    return param.type_descriptor.annotation in (int, float)


def bad_number(param) -> str | None:
    """A value just outside the range the option declares (None: it declares none)."""
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    if lo is not None:
        return str(lo - (1 if param.type_descriptor.annotation is int else 0.01))
    if hi is not None:
        return str(hi + 1)
    return None


def test_every_option_is_known_to_this_test():
    """A new option is classified here: a number (with its range), a choice, a form, or free."""
    unknown = []
    for words, name, param in options():
        key = (words, name)
        if numeric(param):
            if bad_number(param) is None and key not in BOUNDS and key not in ANY_NUMBER:
                unknown.append(f"{' '.join(words)} {name}: a number with no range (min=/max=, or BOUNDS)")
        elif key not in CHOICES and key not in FORMS and key not in FREE:
            unknown.append(f"{' '.join(words)} {name}")
    assert not unknown, "options this test does not classify:\n" + "\n".join(unknown)


def test_every_bad_value_is_one_sentence_and_exit_1(trained, tmp_path):
    """Out of range, not a number, not one of the choices, not of its form: exit 1 with one red
    line naming the option, before anything is loaded or written, whoever refuses it (the parser
    or edgekit)."""
    failures = []
    for words, name, param in options():
        key = (words, name)
        tries: list[tuple[str, list[str]]] = []
        if numeric(param):
            if key not in ANY_NUMBER:
                tries.append((bad_number(param) or BOUNDS[key], [name]))
            tries.append(("abc", [name]))
        elif key in CHOICES:
            tries.append(("xyz", ["xyz", *CHOICES[key]]))
        elif key in FORMS:
            value, form = FORMS[key]
            tries.append((value, [name, form]))
        for value, words_said in tries:
            args = needed(words, trained, tmp_path)
            # an option after the needed arguments; an argument in its place (the first of them)
            args = [*args, name, value] if name.startswith("-") else [value, *args[1:]]
            result = runner.invoke(app, [*words, *map(str, args)])
            lines = result.stderr.strip().splitlines()
            ok = (
                result.exit_code == 1
                and len(lines) == 1
                and lines[0].startswith("error: ")
                and all(w in lines[0] for w in words_said)
            )
            if not ok:
                failures.append(f"{' '.join(words)} {name} {value}: exit {result.exit_code}: {result.output}")
    assert not failures, "\n".join(failures)


@pytest.mark.runtime_only
def test_the_command_line_of_the_wrong_shape_is_exit_2_and_a_bad_value_exit_1(tmp_path):
    """The one rule: 2 for a command line typer cannot parse (an unknown option, a missing
    argument), 1 for a bad value, however it is found."""
    assert runner.invoke(app, ["info", "--no-such-flag", "x.tflite"]).exit_code == 2
    assert runner.invoke(app, ["run", str(BLAZEFACE)]).exit_code == 2  # no --source nor --text
    assert runner.invoke(app, ["bench"]).exit_code == 2
    one_sentence(runner.invoke(app, ["run", str(BLAZEFACE), "-s", "x.png", "--threads", "abc"]), "--threads")
    one_sentence(
        runner.invoke(app, ["run", str(BLAZEFACE), "-s", "x.png", "--conf", "2"]), "--conf", "between 0 and 1"
    )


@pytest.mark.runtime_only
def test_a_device_the_backend_cannot_use_is_refused_not_run_on_the_cpu(tmp_path):
    picture = photo(tmp_path / "p.png")
    one_sentence(
        invoke("run", BLAZEFACE, "--source", picture, "--device", "cuda"), "--device auto, cpu, not 'cuda'"
    )
    one_sentence(invoke("run", BLAZEFACE, "--source", picture, "--threads", "0"), "--threads")


def test_to_all_honours_quantize(trained, tmp_path):
    """`--to all --quantize int8`: the int8 file of every format, nothing else."""
    from edgekit.export.base import Quantization, targets

    out = tmp_path / "int8"
    r = invoke("export", trained, "--to", "all", "--quantize", "int8", "--out", out)
    assert r.exit_code == 0, r.output
    want = {t.default_path(trained).name for t in targets((Quantization.INT8,))}
    assert {p.name for p in out.iterdir()} == want and len(want) >= 2
    # each long step said on stderr as it begins: loading, Keras's outputs, each target's conversion
    said = r.stderr
    steps = ["loading model.keras", "running Keras on", *(f"{n}: converting" for n in sorted(want))]
    assert all(step in said for step in steps), said
    assert said.index("loading") < said.index("running Keras") < said.index("converting")
    assert f"{len(want)} of {len(want)} artifacts written" in said
    r = invoke("export", trained, "--to", "xyz")
    one_sentence(r, "tflite", "onnx", "all")


def test_export_of_a_tflite_file_says_what_export_takes_first():
    r = invoke("export", BLAZEFACE)
    one_sentence(r, "export takes a .keras or .h5 file")
    assert "has no edgekit card" not in r.output


@pytest.mark.runtime_only
def test_help_names_values_in_words_not_python_types():
    python_types = re.compile(r"<(int|float|str|bool|path|Path|list\[[^>]*\])>")
    for words in commands():
        r = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "100"})
        assert r.exit_code == 0, r.output
        assert not python_types.search(r.stdout), (words, python_types.findall(r.stdout))
    r = runner.invoke(app, ["bench", "--help"], env={"COLUMNS": "100"})
    assert "INTEGER" in r.stdout and "PATH" in r.stdout


# ---- every written file reported ---------------------------------------------------------------


def test_each_command_that_writes_names_what_it_wrote(trained, tmp_path):
    """train, export (and its report), run --save (image, folder, video), bench (--out, --csv),
    compare --plot, evaluate --confusion, data make: every file that appears is named."""
    import cv2

    def check(*args):
        before = files_under(tmp_path)
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        assert_names_what_it_wrote(tmp_path, before, r)
        return r

    check("data", "make", "text", "--out", tmp_path / "corpus")
    check("train", "mnist-mlp", "--epochs", "1", "--limit", "300", "--out", tmp_path / "mlp")
    model = tmp_path / "model.keras"
    model.write_bytes(trained.read_bytes())
    (tmp_path / "card.json").write_bytes(trained.with_name("card.json").read_bytes())
    check("export", model, "--to", "tflite", "--report", tmp_path / "parity.json")
    check("evaluate", tmp_path / "model.tflite", "--limit", "50", "--confusion", tmp_path / "cm.png")
    faces = tmp_path / "faces"
    faces.mkdir()
    for i in range(3):
        photo(faces / f"f{i}.png", 40 * i)
    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(5):
        w.write(np.full((120, 160, 3), 30 * i, np.uint8))
    w.release()
    check("run", BLAZEFACE, "--source", faces / "f0.png", "--save", tmp_path / "one.jpg")
    check("run", BLAZEFACE, "--source", faces, "--save", tmp_path / "annotated")
    r = check("run", BLAZEFACE, "--source", video, "--save", tmp_path / "out.mp4")
    assert "out.mp4 (5 annotated frames" in r.stderr
    check("bench", BLAZEFACE, "--runs", "20", "--out", tmp_path / "b.json", "--csv", tmp_path / "b.csv")
    check("compare", tmp_path / "b.json", "--plot", tmp_path / "chart.png")


# ---- info: every card field in words ----------------------------------------------------------

# each field of the card and the row `info` shows it in (a new field must be placed)
FIELD_ROWS = {
    "task": "task",
    "labels": "labels",
    "input": "input",
    "output": "output",
    "preprocess": "preprocess",
    "postprocess": "postprocess",
    "recipe": "recipe",
    "hparams": "hparams",
    "dataset": "dataset",
    "metrics": "metrics",
    "format": "format",
    "quantization": "format",
    "io_quantization": "io quantization",
    "parity": "parity",
    "weights_sha256": "weights sha256",
    "file_sha256": "file sha256",
    "edgekit_version": "created",
    "created": "created",
    "schema_version": "card",
}


def info_cases() -> list[Path]:
    """Real files: the shipped BlazeFace (TFLite and ONNX) and every Ultralytics fixture (cards
    inferred), the trained cards come from fixtures below."""
    found = [BLAZEFACE, ASSETS / "face_detection_front_128x128_barracuda.onnx"]
    return found + sorted(p for p in ULTRALYTICS.iterdir() if p.suffix in (".onnx", ".tflite"))


def check_info(path: Path) -> None:
    from edgekit.card import ModelCard

    r = invoke("info", path)
    assert r.exit_code == 0, r.output
    assert_readable_info(r.stdout)
    card = ModelCard.from_json(invoke("info", path, "--json").stdout)
    shown = {line.strip().partition("  ")[0] for line in r.stdout.splitlines()[1:]}
    for f in dataclasses.fields(card):
        assert f.name in FIELD_ROWS, f"the card's field {f.name} has no row in info: place it in FIELD_ROWS"
        value = getattr(card, f.name)
        if f.name == "postprocess":
            value = {k: v for k, v in value.items() if k != "inferred_from"}
        if f.name == "metrics":
            value = {k: v for k, v in value.items() if not isinstance(v, dict)}
        if (
            value not in ("", None, {}, (), [])
            and f.name != "edgekit_version"
            or f.name == "created"
            and value
        ):
            assert FIELD_ROWS[f.name] in shown, f"{path.name}: {f.name} is not shown"


@pytest.mark.parametrize("path", info_cases(), ids=lambda p: p.name)
def test_info_of_inferred_cards_is_words_and_rounded_numbers(path):
    check_info(path)


def test_info_of_trained_and_exported_cards_is_words_and_rounded_numbers(trained, artifacts):
    for path in (trained, *artifacts.values()):
        check_info(path)


# ---- the bench table ----------------------------------------------------------------------------


def quickstart_rows() -> list:
    """The rows of a real quickstart (saved from one run: bench/results/quickstart.json)."""
    from edgekit.benchmark.results import load_result

    return load_result(ROOT / "bench" / "results" / "quickstart.json").rows


@pytest.mark.runtime_only
def test_the_table_fits_80_columns_and_explains_its_marks():
    from edgekit.benchmark.report import default_baseline, table

    rows = quickstart_rows()
    for r in rows:
        r.busy = r is rows[1]
    text = table(rows, default_baseline(rows))
    assert max(map(len, text.splitlines())) <= 80, text
    lines = text.splitlines()
    assert " !" in lines[2] and not any(" !" in line for line in lines[3:6])
    assert "\n! the machine was busy" in text
    assert "model.keras on keras cpu" in text and "tdefault" not in text and ":keras:" not in text
    rows[1].busy = False
    assert "busy" not in table(rows, default_baseline(rows))
    heads = re.split(r"\s{2,}", table(rows, default_baseline(rows), wide=True).splitlines()[0])
    assert {"load ms", "first ms", "p90 ms", "p99 ms", "CV", "items/s", "RSS MB", "pipe p50", "p"} <= set(
        heads
    )


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_show_the_quickstart_table_the_code_prints():
    """Every sample of the quickstart's table (README, docs/) is the table `table()` prints for the
    result it came from (bench/results/quickstart.json, an `edgekit quickstart --json` of one run):
    a change to the table shows here, with the text to paste."""
    from edgekit.benchmark.report import default_baseline, table

    rows = quickstart_rows()
    want = table(rows, default_baseline(rows))
    found = 0
    for page in markdown_pages():
        for block in re.findall(r"```\n(model +backend .*?)\n```", page.read_text(), re.S):
            found += 1
            assert block == want, f"{page.name}'s quickstart table is stale; it should read:\n{want}"
    assert found >= 1


def test_the_docs_quote_what_doctor_prints():
    """Lines the docs quote from `edgekit doctor` are in its code."""
    source = (ROOT / "edgekit" / "cli" / "listing.py").read_text()
    quoted = 0
    for page in markdown_pages():
        for line in (
            ln for ln in page.read_text().splitlines() if ln.startswith("edgekit doctor") and '"' in ln
        ):
            for quote in re.findall(r'"([^"]+)"', line):
                for part in filter(None, (p.strip() for p in quote.split("..."))):
                    quoted += 1
                    assert re.sub(r" CUDA [\d.]+$", " CUDA", part) in source, part
    assert quoted >= 1


# ---- compare's chart -----------------------------------------------------------------------------


@pytest.mark.runtime_only
def test_two_results_of_one_host_are_told_apart_and_the_chart_reads(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")  # the chart is the host side's (a device has none)

    matplotlib.use("Agg")
    from edgekit.benchmark import compare as cmp
    from edgekit.benchmark.results import BenchResult

    rows = quickstart_rows()
    slower = [dataclasses.replace(r, p50_ms=r.p50_ms * 2, p90_ms=r.p90_ms * 2) for r in rows]
    a = BenchResult(tmp_path / "a" / "vm.json", {"hostname": "vm"}, rows, 2)
    b = BenchResult(tmp_path / "b" / "vm.json", {"hostname": "vm"}, slower, 2)
    c = cmp.merge([a, b])
    assert len(set(c.hosts)) == 2 and all(h.startswith("vm (") for h in c.hosts)
    key = c.keys[1]
    assert c.row(c.hosts[1], key).p50_ms == pytest.approx(2 * c.row(c.hosts[0], key).p50_ms)
    assert "model.tflite on litert cpu" in cmp.text_table(c) and "tdefault" not in cmp.text_table(c)

    import matplotlib.pyplot as plt

    fig = cmp.chart(c)
    bars, points = fig.axes
    assert not bars.get_legend() and not points.get_legend() and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == c.hosts
    names = [t.get_text() for t in points.texts]
    assert any(n.startswith("model_int8.tflite") for n in names) and not any(n[0].isdigit() for n in names)
    assert "tdefault" not in " ".join(t.get_text() for t in bars.get_yticklabels())
    for axis, values in (
        (bars.xaxis, [r.p50_ms for r in rows + slower]),
        (points.yaxis, [r.p50_ms for r in rows + slower]),
    ):
        lo, hi = sorted(axis.get_view_interval())
        labelled = [
            t
            for t, label in zip(axis.get_ticklocs(), axis.get_ticklabels(), strict=True)
            if label.get_text() and lo <= t <= hi
        ]
        assert len(labelled) >= 3, labelled
        assert max(labelled) >= max(values) / 5 and min(labelled) <= min(values) * 5, (labelled, values)
    plt.close(fig)


# ---- tune's plots and its quiet start --------------------------------------------------------------


def test_one_epoch_curves_have_one_tick_and_their_values_written():
    from edgekit.plots import curves_figure

    fig = curves_figure({"accuracy": [0.15], "val_accuracy": [0.2], "loss": [2.3]})
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        assert [t for t in ax.get_xticks() if lo <= t <= hi] == [1]
        assert ax.texts and "one epoch" in ax.get_title()


def test_scores_plot_names_the_ring_around_the_best_trial():
    import matplotlib.pyplot as plt

    from edgekit.models.trials import scores_figure

    rows = [{"trial": 1, "hidden": 8, "val_accuracy": 0.8}, {"trial": 2, "hidden": 16, "val_accuracy": 0.9}]
    fig = scores_figure(rows, ["hidden"], "val_accuracy", "t")
    (ax,) = fig.axes
    assert "best: trial 2" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_tune_keeps_tensorflows_start_up_logs_off(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL")}
    cmd = [*EDGEKIT, "tune", "mnist-mlp-small", "--grid", "hidden=8", "--epochs", "1", "--limit", "100"]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "t")], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    for chatter in ("absl::InitializeLog", "cpu_feature_guard", "oneDNN", "rebuild TensorFlow"):
        assert chatter not in proc.stderr, proc.stderr


# ---- captions that read on any picture -------------------------------------------------------------


def sample_results(task: str, h: int, w: int):
    """A result of each task that draws, as its postprocess gives it."""
    from edgekit.runtime.detection import Detection
    from edgekit.runtime.tasks.classify import Classification
    from edgekit.runtime.tasks.segment import Mask

    mask = np.zeros((h, w), bool)
    mask[h // 2 :, w // 2 :] = True
    return {
        "classify-image": [Classification(7, "7", 0.99), Classification(3, "3", 0.01)],
        "segment": [Mask.from_mask(mask)],
        "detect": [Detection((40.0, 80.0, 140.0, 150.0), 0.9, f"class{i}", i) for i in range(1)],
    }.get(task)


# tasks whose picture is the model's output itself, drawn whole with no caption over it
UNCAPTIONED = {"generate": "the generated digit fills its tile; the grid's columns say which was asked for"}


def caption_colours(image: np.ndarray, ground: int, region: tuple[slice, slice]) -> tuple:
    """The box's colour (the most common drawn colour in `region`) and the letters' (the most common
    far from it)."""
    part = image[region].reshape(-1, 3).astype(int)
    drawn = part[np.abs(part - ground).max(axis=1) > 0]
    colours, counts = np.unique(drawn, axis=0, return_counts=True)
    box = colours[np.argmax(counts)]
    far = np.abs(colours - box).max(axis=1) > 100
    assert far.any(), "no letters on the caption's box"
    ink = colours[far][np.argmax(counts[far])]
    return tuple(box), tuple(ink)


@pytest.mark.runtime_only
@pytest.mark.parametrize("ground", [255, 0], ids=["white paper", "black"])
def test_every_task_that_draws_writes_captions_that_read(ground):
    """Over white paper and over black, each caption sits on a filled box and its letters contrast
    with the box by WCAG's 4.5 at least; parametrised over the task registry."""
    from edgekit.runtime.drawing import contrast
    from edgekit.runtime.tasks import TASKS, Task

    h, w = 200, 300
    drew = 0
    for cls in TASKS:
        if cls.draw is Task.draw or cls.name in UNCAPTIONED:
            continue
        results = sample_results(cls.name, h, w)
        assert results is not None, f"task {cls.name} draws: give this test a result of it"
        task = object.__new__(cls)  # draw needs no model
        image = task.draw(np.full((h, w, 3), ground, np.uint8), results)
        # the caption: top-left for whole-frame results, above the box for a detection
        region = (slice(62, 80), slice(40, 120)) if cls.name == "detect" else (slice(0, 20), slice(0, 60))
        box, ink = caption_colours(image, ground, region)
        assert contrast(box, ink) >= 4.5, (cls.name, box, ink)
        drew += 1
    assert drew >= 3


def test_the_caption_colours_of_every_palette_entry_read():
    from edgekit.runtime.detection import _PALETTE
    from edgekit.runtime.drawing import DARK, contrast, ink_for
    from edgekit.runtime.tasks.segment import OVERLAY_BGR

    for fill in (*_PALETTE, OVERLAY_BGR, DARK):
        assert contrast(fill, ink_for(fill)) >= 4.5, fill


# ---- validation that proves nothing says so ---------------------------------------------------------


def test_a_parity_check_on_constant_outputs_says_it_proves_nothing(tmp_path):
    """An untrained network whose outputs are the same for every input (softmax at exactly 1/3)
    agrees with any file that ignores its input: the report and the command say so."""
    from edgekit.tfutil import import_tf

    _, keras = import_tf()
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")(inputs)
    path = tmp_path / "flat.keras"
    keras.Model(inputs, outputs).save(path)
    r = invoke("export", path, "--to", "tflite", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "the same outputs for all" in r.stderr and "proves nothing" in r.stderr
    report = json.loads((tmp_path / "r.json").read_text())["artifacts"][0]["report"]
    assert "proves nothing" in report["warning"]
    info = invoke("info", tmp_path / "flat.tflite")
    assert "proves nothing" in info.stdout


def test_varied_outputs_give_no_warning():
    from edgekit.export.validate import is_constant

    assert is_constant(np.full((5, 3), 1 / 3), 5)
    assert not is_constant(np.random.default_rng(0).random((5, 3)), 5)
    assert not is_constant(np.full((5, 3), np.nan), 5)


# ---- arrays and images given to the wrong model ----------------------------------------------------


@pytest.fixture(scope="module")
def tensor_files(tmp_path_factory):
    from tensor_fixtures import make_tensor_models

    return make_tensor_models(tmp_path_factory.mktemp("tensors"))


def test_rows_of_an_npy_are_samples_on_tflite_and_onnx_alike(tensor_files, tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    outputs = {}
    for fmt, path in tensor_files.items():
        r = invoke("run", path, "--source", tmp_path / "x.npy", "--json")
        assert r.exit_code == 0, r.output
        *lines, summary = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(lines) == 3 and json.loads(r.stdout.splitlines()[-1])["summary"]["processed"] == 3
        outputs[fmt] = [rec["results"][0]["mean"] for rec in lines]
    assert outputs["tflite"] == pytest.approx(outputs["onnx"], abs=1e-4)


def test_a_photo_given_to_a_tensor_model_gets_a_hint(tensor_files, tmp_path):
    r = invoke("run", tensor_files["onnx"], "--source", photo(tmp_path / "p.png"))
    one_sentence(r, "an image source", ".npy", "--task")


# ---- result files, unwritable folders ----------------------------------------------------------------


@pytest.mark.runtime_only
def test_compare_on_json_lines_and_bench_on_a_text_file_are_one_sentence_each(tmp_path):
    lines = tmp_path / "run.json"
    lines.write_text('{"results": []}\n{"summary": {}}\n')
    one_sentence(invoke("compare", lines), "JSON lines", "edgekit run --json")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    r = invoke("bench", notes)
    one_sentence(r, "notes.txt is not a model file")
    assert r.output.count("is not a model file") == 1


@pytest.mark.runtime_only
def test_unwritable_places_are_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = invoke("bench", BLAZEFACE, "--runs", "5", "--out", blocker / "r.json")
    one_sentence(r, "cannot write to", "a-file")
    assert "[1/" not in r.stderr  # no row was measured
    r = invoke("data", "make", "text", "--out", blocker / "corpus")
    one_sentence(r, "a-file")
    assert ".part" not in r.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        one_sentence(invoke("data", "make", "text", "--out", locked / "corpus"), str(locked))
        one_sentence(invoke("bench", BLAZEFACE, "--out", locked / "r.json"), str(locked))
    finally:
        locked.chmod(0o700)


@pytest.mark.runtime_only
def test_folders_data_make_makes_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        r = invoke("data", "make", "text", "--out", tmp_path / "made" / "corpus")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "made" / "corpus").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "made").stat().st_mode & 0o777 == 0o755


# ---- Ctrl-C keeps what was done -------------------------------------------------------------------


def interrupt_after(cmd: list[str], line: str, timeout: float = 300) -> tuple[int, str, str]:
    """Run `cmd`, send it Ctrl-C (SIGINT) once stderr has a line holding `line`, and return its exit
    code, stdout and stderr."""
    import threading

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    sent = False
    for text in proc.stderr:
        err.append(text)
        if not sent and line in text:
            proc.send_signal(signal.SIGINT)
            sent = True
    proc.wait(timeout=timeout)
    reader.join(timeout=30)
    assert sent, "".join(err)
    return proc.returncode, "".join(out), "".join(err)


def test_ctrl_c_in_bench_keeps_the_finished_rows(tensor_files, tmp_path):
    saved = tmp_path / "r.json"
    files = [tensor_files["tflite"], tensor_files["onnx"], BLAZEFACE]
    cmd = [*EDGEKIT, "bench", *map(str, files), "--runs", "2000", "--out", str(saved), "--seed", "1"]
    code, out, err = interrupt_after(cmd, " ms ±")  # a row's figures: the first row is done
    assert code == 130 and saved.is_file(), (out, err)
    doc = json.loads(saved.read_text())
    rows = doc["results"]
    assert 1 <= len(rows) < 3 and all(r["p50_ms"] > 0 and r["error"] is None for r in rows)
    assert "interrupted" in doc and "rows were measured" in err
    table = out.splitlines()
    assert table[0].startswith("model") and len(
        [ln for ln in table[1:] if ln.split()[:1] and ln.split()[0] in {Path(f).name for f in files}]
    ) == len(rows)


def test_ctrl_c_in_train_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [*EDGEKIT, "train", "mnist-mlp", "--epochs", "200", "--limit", "400", "--out", str(out)]
    code, _, err = interrupt_after(cmd, "epoch 2/")
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted:") and "--resume" in last and str(out) in last
