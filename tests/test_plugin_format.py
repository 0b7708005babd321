"""A model format added from one module: tests/plugins/edgekit_gzip_tflite.py registers a file kind
(how a `.tflgz` file's card is read and written), an exporter and a backend, and nothing else in
edgekit changes. Loaded with `EDGEKIT_PLUGINS`, it is picked up by everything that reads the
registries: the CLI's choices, `export --to all`, `list`, `info`, `run`, `bench` (whose rows run in
child processes, which load it too), the quickstart's targets and the export matrix's
parametrisation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).parent / "plugins"


def edgekit(*args: object, timeout: int = 600) -> subprocess.CompletedProcess:
    """`edgekit ARGS` in a fresh process with the plugin named in EDGEKIT_PLUGINS."""
    env = {
        **os.environ,
        "EDGEKIT_PLUGINS": "edgekit_gzip_tflite",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python(code: str) -> str:
    env = {**os.environ, "EDGEKIT_PLUGINS": "edgekit_gzip_tflite", "PYTHONPATH": str(PLUGINS)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_format_added_from_one_module_is_picked_up_everywhere(trained, digit_pngs, tmp_path):
    out = tmp_path / "all"
    # the CLI's choices, from the registry
    help_text = edgekit("export", "--help").stdout
    assert "tflite-gz" in help_text
    wrong = edgekit("export", trained, "--to", "tflite-gzz")
    assert wrong.returncode == 1 and "did you mean tflite-gz?" in wrong.stderr
    # every target, the plugin's among them, each validated against Keras
    done = edgekit("export", trained, "--to", "all", "--out", out)
    assert done.returncode == 0, done.stderr
    packed = out / f"{trained.stem}_int8.tflgz"
    assert packed.exists() and (out / f"{trained.stem}.tflgz").exists()
    assert f"{packed}" in done.stdout and "agreement" in done.stdout
    # a smaller file than the plain TFLite it wraps, with the card inside it
    assert packed.stat().st_size < (out / f"{trained.stem}_int8.tflite").stat().st_size
    info = edgekit("info", packed, "--json")
    assert info.returncode == 0, info.stderr
    card = json.loads(info.stdout)
    assert card["format"] == "tflite-gz" and card["quantization"] == "int8" and card["parity"]["passed"]
    listed = edgekit("list").stdout
    assert "tflite-gz" in listed and "litert-gz" in listed
    # it runs: the right digits from the images
    folder, labels = digit_pngs
    ran = edgekit("run", packed, "--source", folder / "digit_0.png", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[0])["results"][0]["index"] == labels[0]
    # the bench measures it in a child process of its own, on its own backend
    bench = edgekit("bench", packed, "--runs", "20", "--no-save", "--json")
    assert bench.returncode == 0, bench.stderr
    (row,) = json.loads(bench.stdout)["results"]
    assert row["error"] is None and row["backend"] == "litert-gz" and row["quantization"] == "int8"
    # the quickstart exports it, and the export matrix test is parametrised over it
    targets = python(
        "from edgekit.export.base import quickstart_targets\n"
        "import sys; sys.path.insert(0, 'tests')\n"
        "from conftest import ARTIFACTS\n"
        "print([str(t) for t in quickstart_targets()], ARTIFACTS)"
    )
    assert "'tflite-gz fp32', 'tflite-gz int8'" in targets and "('tflite-gz', 'int8')" in targets


def test_a_plugin_that_cannot_be_imported_is_one_sentence(tmp_path):
    env = {**os.environ, "EDGEKIT_PLUGINS": "no_such_edgekit_plugin"}
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit.cli", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "EDGEKIT_PLUGINS names 'no_such_edgekit_plugin', which cannot be imported" in proc.stderr
