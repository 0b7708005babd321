"""Every recipe in the registry × every format × every mode: a tiny model of the recipe (its `tiny`
hparams, one epoch on a few samples) goes through `edgekit export --to all`; each artifact holds a
card that round-trips, passed its mode's bar against Keras, and gives the same numbers in a process
with no TensorFlow.

`--to all` loads the model once per recipe. A recipe whose layers are all used by another recipe of
the same task (mnist-mlp inside mnist-mlp-bn, the MNIST/Fashion/CIFAR CNNs inside cats-dogs-cnn) adds
no export path of its own and runs with `-m slow`; mnist-cnn's matrix is in test_export.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from conftest import run_python
from typer.testing import CliRunner

from edgekit.card import ModelCard
from edgekit.export.base import exporter_names
from edgekit.models.recipe import get_recipe, recipe_names
from edgekit.runtime.files import read_card

BARS = {"fp32": 1e-4, "fp16": 1e-2}  # max abs diff; dynamic and int8 are held to the metric drop


def _layers(name: str) -> frozenset[str]:
    return frozenset(cls for cls, _ in get_recipe(name).architecture)


def _covered(name: str) -> bool:
    """Another recipe of the same task uses every layer class this one does (the first of equals wins)."""
    names = recipe_names()
    mine, task = _layers(name), get_recipe(name).task
    for other in names:
        if other == name or get_recipe(other).task != task or not mine:
            continue
        theirs = _layers(other)
        if mine < theirs or (mine == theirs and names.index(other) < names.index(name)):
            return True
    return False


RECIPES = [pytest.param(n, marks=[pytest.mark.slow] if _covered(n) else []) for n in recipe_names()]


def _generated_data(recipe: str, tmp_path_factory) -> str | None:
    """A small dataset from the project's own generator for recipes that have one (`edgekit data
    make`), where its tool is installed; None: the recipe's default data."""
    import shutil

    from edgekit.runtime.datasets.synth import GENERATORS, generator_names, make

    names = [g for g in generator_names() if recipe in GENERATORS.get(g).recipes]
    if not names or (GENERATORS.get(names[0]).needs and not shutil.which(GENERATORS.get(names[0]).needs)):
        return None
    if names[0] not in _MADE:  # kws and kws-lstm share theirs
        out = tmp_path_factory.mktemp(f"{names[0]}-data") / "data"
        make(names[0], out, count=120, seed=0)
        _MADE[names[0]] = str(out)
    return _MADE[names[0]]


_MADE: dict[str, str] = {}
# a tiny model trained one epoch is near chance, on a few dozen held-out samples one flipped answer
# is several points: the quantized modes are held to a drop this size here (the real bars, 1 point,
# are held by test_export.py on a trained mnist-cnn and by the benchmark)
TINY_MAX_DROP = 10.0


@pytest.fixture(scope="module", params=RECIPES)
def exported(request, tmp_path_factory) -> tuple[str, Path, dict]:
    """(recipe, folder, the --report JSON) after a tiny training run and `edgekit export --to all`."""
    from edgekit.cli import app
    from edgekit.errors import DataError, SourceError
    from edgekit.models.train import train

    name = request.param
    recipe = get_recipe(name)
    folder = tmp_path_factory.mktemp(name)
    data = _generated_data(name, tmp_path_factory)
    try:
        train(name, folder, data=data, hparams=dict(recipe.tiny), epochs=1, limit=64, quiet=True)
    except (DataError, SourceError) as e:  # no data on this machine (CIFAR-10 needs a download)
        pytest.skip(f"{name}: {e}")
    report = folder / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "export", str(folder / "model.keras"), "--to", "all", "--report", str(report),
            "--max-drop", str(TINY_MAX_DROP),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return name, folder, json.loads(report.read_text())


def test_every_artifact_holds_its_card_and_meets_its_bar(exported):
    from edgekit.runtime.files import ModelFile

    name, folder, doc = exported
    original = ModelCard.load(folder / "card.json")
    written = [a for a in doc["artifacts"] if a["written"]]
    assert {a["format"] for a in written} == set(exporter_names())
    for a in doc["artifacts"]:
        assert a["written"] or "cannot export a model with" in a["error"], a
    for a in written:
        path = Path(a["path"])
        card = read_card(path)
        assert ModelCard.from_json(card.to_json()) == card
        assert (card.format, card.quantization) == (a["format"], a["quantization"])
        assert card.recipe == name and card.weights_sha256 == original.weights_sha256
        assert card.preprocess == original.preprocess and card.labels == original.labels
        report = card.parity
        assert report == a["report"] and report["passed"] and report["labelled"]
        if a["quantization"] in BARS:
            assert report["max_abs_diff"] <= BARS[a["quantization"]]
        else:
            assert report[f"{report['metric']}_delta_points"] >= -TINY_MAX_DROP
        ops = ModelFile.open(path).ops
        assert ops.portable, f"{path.name}: {ops.warnings()}"
        if a["format"] == "tflite" and "LSTM" in _layers(name):
            assert "WHILE" not in ops.ops  # unrolled over a fixed batch of 1


def test_every_artifact_gives_the_validated_numbers_without_tensorflow(exported):
    from edgekit.export.data import eval_data
    from edgekit.export.source import keras_outputs
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.files.keras import load_keras_model

    name, folder, doc = exported
    card = ModelCard.load(folder / "card.json")
    heldout = eval_data(card, None, 1).heldout
    items = heldout.x[:16]
    model = load_keras_model(folder / "model.keras")
    reference = keras_outputs(model, card_inputs(card, type(heldout)(items, heldout.y[:16])))
    jobs = [
        (a["path"], BARS.get(a["quantization"], a["report"]["max_abs_diff"] * 1.001 + 1e-6))
        for a in doc["artifacts"]
        if a["written"]
    ]
    with open(folder / "check.pkl", "wb") as f:
        pickle.dump({"items": list(items), "reference": reference, "jobs": jobs}, f)
    code = f"""
import json, pickle, sys
import numpy as np
from edgekit.export.validate import run_artifact
with open({str(folder / "check.pkl")!r}, "rb") as f:
    job = pickle.load(f)
worst = {{}}
for path, bar in job["jobs"]:
    got, _ = run_artifact(path, job["items"])
    diff = max(float(np.abs(g.reshape(len(g), -1) - r.reshape(len(r), -1)).max())
               for g, r in zip(got, job["reference"]))
    worst[path] = [diff, bar]
heavy = [m for m in ("tensorflow", "keras", "tf2onnx") if m in sys.modules]
print(json.dumps({{"worst": worst, "heavy": heavy}}))
"""
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    for path, (diff, bar) in out["worst"].items():
        assert diff <= bar, f"{Path(path).name}: max abs diff {diff:.3g} > {bar:.3g}"
