"""A file changed after export is refused on load: export seals it with a digest in its card, and
`run`/`bench`/`info` check it (34 runs on mutated files changed their answer with exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FORMATS = [("tflite", "int8"), ("onnx", "fp32")]


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict[str, Path]:
    from edgekit.export.api import export_model, plan_export

    out = tmp_path_factory.mktemp("sealed")
    return {f: export_model(trained, plan_export(trained, f, q, out=out / f"m.{f}")).path for f, q in FORMATS}


def _flip_a_weight(path: Path, out: Path) -> Path:
    """One byte changed far from the card (the middle of the file: a weight), the file still sound."""
    buf = bytearray(path.read_bytes())
    card_at = buf.find(b'"file_sha256"')
    at = len(buf) // 2
    assert abs(at - card_at) > 4096
    buf[at] ^= 0x01
    out.write_bytes(bytes(buf))
    return out


@pytest.mark.parametrize("fmt", [f for f, _ in FORMATS])
def test_export_records_the_digest_and_the_file_loads(exported, fmt):
    from edgekit.runtime.files import read_card
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.weights_digest import PLACEHOLDER, file_digest

    path = exported[fmt]
    card = read_card(path)
    assert len(card.file_sha256) == 64 and card.file_sha256 != PLACEHOLDER
    assert file_digest(path.read_bytes(), card.file_sha256) == card.file_sha256
    with Predictor(path) as predictor:
        assert predictor.card.file_sha256 == card.file_sha256


@pytest.mark.parametrize("fmt", [f for f, _ in FORMATS])
def test_a_changed_weight_is_refused_by_run_bench_and_info(exported, fmt, tmp_path):
    from typer.testing import CliRunner

    from edgekit.cli import app
    from edgekit.errors import ModelFileError
    from edgekit.runtime.predictor import Predictor

    bad = _flip_a_weight(exported[fmt], tmp_path / f"changed.{fmt}")
    with pytest.raises(ModelFileError, match="changed after export"):
        Predictor(bad)
    image = tmp_path / "x.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.zeros((28, 28), np.uint8))
    for args in (["run", str(bad), "--source", str(image)], ["info", str(bad)], ["bench", str(bad)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "changed after export" in result.output and "Traceback" not in result.output


def test_a_changed_card_is_refused_too(exported, tmp_path):
    from edgekit.errors import ModelFileError
    from edgekit.runtime.files import read_card

    buf = exported["onnx"].read_bytes()
    at = buf.find(b'"task": "classify-image"')
    assert at > 0
    changed = tmp_path / "relabelled.onnx"
    changed.write_bytes(buf.replace(b'"task": "classify-image"', b'"task": "classify-imagf"'))
    with pytest.raises(ModelFileError, match="changed after export"):
        read_card(changed)


def test_a_file_with_no_digest_loads_unchecked(exported, tmp_path):
    """Files exported before the digest was recorded: their card has no file_sha256."""
    from edgekit.runtime.files import read_card

    buf = exported["onnx"].read_bytes()
    path = tmp_path / "old.onnx"
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(buf)
    for prop in model.metadata_props:
        if prop.key == "edgekit_card":
            d = json.loads(prop.value)
            d.pop("file_sha256")
            prop.value = json.dumps(d)
    path.write_bytes(model.SerializeToString())
    assert read_card(path).file_sha256 == ""
