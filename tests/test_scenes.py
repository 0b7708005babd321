"""The scenes generator: real files in the YOLO layout, boxes inside the image, masks that agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import ConfigError

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory) -> Path:
    """12 scenes made the way a user makes them: `edgekit data make scenes`."""
    from typer.testing import CliRunner

    from edgekit.cli import app

    out = tmp_path_factory.mktemp("scenes") / "set"
    result = CliRunner().invoke(
        app, ["data", "make", "scenes", "--out", str(out), "--count", "12", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "10 training and 2 test scenes" in result.output
    return out


def _read(path: Path, flags: int) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), flags)
    assert image is not None, path
    return image


def test_scenes_write_the_yolo_layout_with_masks(scenes_dir):
    import cv2

    classes = (scenes_dir / "classes.txt").read_text().split()
    assert classes == ["circle", "square", "triangle", "digit"]
    assert "names: [circle, square, triangle, digit]" in (scenes_dir / "data.yaml").read_text()
    for split, n in (("train", 10), ("test", 2)):
        stems = {p.stem for p in (scenes_dir / split / "images").glob("*.png")}
        assert len(stems) == n
        assert stems == {p.stem for p in (scenes_dir / split / "labels").glob("*.txt")}
        assert stems == {p.stem for p in (scenes_dir / split / "masks").glob("*.png")}
        for stem in stems:
            image = _read(scenes_dir / split / "images" / f"{stem}.png", cv2.IMREAD_UNCHANGED)
            mask = _read(scenes_dir / split / "masks" / f"{stem}.png", cv2.IMREAD_UNCHANGED)
            assert image.shape == (160, 160, 3) and mask.shape == (160, 160)
            assert set(np.unique(mask)) <= {0, 255}
            rows = np.loadtxt(scenes_dir / split / "labels" / f"{stem}.txt", ndmin=2)
            assert 1 <= len(rows) <= 4
            cls, cx, cy, w, h = rows.T
            assert set(cls) <= set(range(len(classes)))
            # every box lies inside the image
            assert (cx - w / 2 >= -1e-6).all() and (cx + w / 2 <= 1 + 1e-6).all()
            assert (cy - h / 2 >= -1e-6).all() and (cy + h / 2 <= 1 + 1e-6).all()
            # masks agree with boxes: each box holds object pixels touching all four of its sides,
            # and no object pixel lies outside every box
            covered = np.zeros_like(mask, bool)
            for x1, y1, x2, y2 in np.round(
                np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * 160
            ):
                inside = mask[int(y1) : int(y2), int(x1) : int(x2)] > 0
                edges = (inside[0].any(), inside[-1].any(), inside[:, 0].any(), inside[:, -1].any())
                assert all(edges), "a box that is not the tight box of an object"
                covered[int(y1) : int(y2), int(x1) : int(x2)] = True
            assert not (mask[~covered] > 0).any()


def test_scenes_are_deterministic_by_seed_and_independent_of_count():
    from edgekit.runtime.datasets.synth.scenes import render_scenes

    a = render_scenes(3, seed=5, split="train")
    b = render_scenes(5, seed=5, split="train")
    assert np.array_equal(a.images, b.images[:3]) and np.array_equal(a.masks, b.masks[:3])
    assert all(np.array_equal(x, y) for x, y in zip(a.boxes, b.boxes[:3]))
    other = render_scenes(3, seed=6, split="train")
    assert not np.array_equal(a.images, other.images)


def test_test_scenes_paste_only_held_out_digits():
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.datasets.synth.scenes import _digits

    mnist = load_dataset("mnist", "shipped")
    assert np.array_equal(_digits("test")[0], mnist.heldout.x[..., 0])
    assert np.array_equal(_digits("train")[0], mnist.train.x[..., 0])


def test_scene_options_shapes_only_digit_classes_and_size():
    from edgekit.runtime.datasets.synth.scenes import SceneSpec, render_scenes

    shapes = render_scenes(4, 0, "train", SceneSpec(objects="shapes", size=(96, 128)))
    assert shapes.classes == ("circle", "square", "triangle") and shapes.images.shape == (4, 96, 128, 3)
    assert all(set(r[:, 0]) <= {0, 1, 2} for r in shapes.boxes)
    digits = render_scenes(6, 0, "train", SceneSpec(objects="digits", digit_classes=True))
    assert digits.classes == tuple("0123456789")
    with pytest.raises(ConfigError, match="shapes, digits or mixed"):
        SceneSpec(objects="cats")


def test_the_yolo_loader_reads_what_the_generator_wrote(scenes_dir):
    import edgekit.runtime.datasets.yolo  # noqa: F401  (registers the dataset, as the recipe's import does)
    from edgekit.runtime.datasets import load_dataset

    ds = load_dataset("yolo", str(scenes_dir))
    assert ds.labels == ("circle", "square", "triangle", "digit")
    assert len(ds.train) == 10 and len(ds.heldout) == 2 and ds.skipped == 0
    assert ds.train.x.shape == (10, 160, 160, 3) and ds.train.x.dtype == np.uint8
    first = sorted((scenes_dir / "train" / "labels").glob("*.txt"))[0]
    np.testing.assert_allclose(ds.train.y[0], np.loadtxt(first, ndmin=2), atol=1e-6)
    assert ds.train.y[0].dtype == np.float32 and ds.train.y[0].shape[1] == 5
